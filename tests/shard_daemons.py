"""Real `cachetop daemon --shard I/N` processes with /metrics, for the issue-19 tests.

    config, names = write_fleet(tmp_path, redis_a, redis_b, memcached, count=400)
    daemon = ShardDaemon(config, "0/2", tmp_path).start()
    up = daemon.wait_up(expected_names)       # {cache_instance: labels of its cachetop_up series}
    daemon.stop()

The fleet is `count` entries on a few real servers, addressed many ways (127.0.0.1 and localhost,
redis:// URLs and bare host:port, databases 0-15, memcached); half are [[instance]] tables, the
other half come from [inventory] files (JSON and YAML). Each daemon is the console script of this
checkout, on a free loopback port, with its state under the config's state_dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

import cachetop
from cachetop.servers import LocalServer, free_port
from tests.api_daemon import end_process

CACHETOP = Path(sys.executable).parent / "cachetop"
SOURCE = Path(cachetop.__file__).resolve().parents[1]


def fleet_entries(
    redis_a: LocalServer, redis_b: LocalServer, memcached: LocalServer, count: int
) -> list[tuple[str, str]]:
    """(name, target) pairs: one real server reached many ways."""
    ways = [
        lambda n: f"redis://127.0.0.1:{redis_a.port}/{n % 16}",
        lambda n: f"redis://localhost:{redis_a.port}/{n % 16}",
        lambda n: f"localhost:{redis_b.port}",
        lambda n: f"redis://127.0.0.1:{redis_b.port}/{n % 16}",
        lambda n: f"memcached://127.0.0.1:{memcached.port}",
        lambda n: f"memcached://localhost:{memcached.port}",
        lambda n: f"127.0.0.1:{redis_a.port}",
    ]
    regions = ("eu", "us", "ap")
    return [(f"{regions[n % 3]}-cache-{n:03d}", ways[n % len(ways)](n)) for n in range(count)]


def write_fleet(
    tmp_path: Path,
    redis_a: LocalServer,
    redis_b: LocalServer,
    memcached: LocalServer,
    *,
    count: int = 400,
    interval: str = "1s",
) -> tuple[Path, list[str]]:
    """A config with count/2 [[instance]] tables and count/2 inventory targets (JSON + YAML)."""
    entries = fleet_entries(redis_a, redis_b, memcached, count)
    half = count // 2
    lines = [
        "[settings]",
        f'interval = "{interval}"',
        'window = "4s"',
        f'state_dir = "{tmp_path / "state"}"',
        "",
        "[alerts]",
        "instance_down = false",
        "",
        "[inventory]",
        'files = ["inventory.d"]',
    ]
    for name, url in entries[:half]:
        if "://" not in url:
            url = f"redis://{url}"
        lines += ["", "[[instance]]", f'name = "{name}"', f'url = "{url}"']
    config = tmp_path / "fleet.toml"
    config.write_text("\n".join(lines) + "\n")
    inventory = tmp_path / "inventory.d"
    inventory.mkdir()
    from_files = entries[half:]
    quarter = len(from_files) // 2
    json_groups = [
        {"targets": [target], "labels": {"name": name, "group": name.split("-")[0]}}
        for name, target in from_files[:quarter]
    ]
    (inventory / "a.json").write_text(json.dumps(json_groups, indent=1))
    yaml_lines = []
    for name, target in from_files[quarter:]:
        yaml_lines += [f"- targets: ['{target}']", f"  labels: {{name: {name}, env: test}}"]
    (inventory / "b.yaml").write_text("\n".join(yaml_lines) + "\n")
    return config, [name for name, _ in entries]


@dataclass
class ShardDaemon:
    config: Path
    shard: str | None
    tmp_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def stderr(self) -> Path:
        return self.tmp_path / f"daemon-{(self.shard or 'all').replace('/', 'of')}.err"

    def start(self) -> ShardDaemon:
        argv = [str(CACHETOP), "daemon", "-c", str(self.config), "--metrics-port", str(self.port),
                "--metrics-addr", "127.0.0.1"]  # fmt: skip
        if self.shard:
            argv += ["--shard", self.shard]
        with open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONPATH": str(SOURCE)}
            )
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def up(self) -> dict[str, dict[str, str]]:
        """cache_instance -> the labels of its cachetop_up series (value as "value")."""
        found: dict[str, dict[str, str]] = {}
        for family in text_string_to_metric_families(self.metrics()):
            if family.name == "cachetop_up":
                for sample in family.samples:
                    found[sample.labels["cache_instance"]] = {**sample.labels, "value": str(sample.value)}
        return found

    def wait_up(self, names: set[str], deadline_s: float = 25.0) -> dict[str, dict[str, str]]:
        """The cachetop_up series once they are exactly `names`, every one up."""
        end = time.monotonic() + deadline_s
        last: dict[str, dict[str, str]] = {}
        while time.monotonic() < end:
            assert self.proc is not None and self.proc.poll() is None, self.stderr.read_text()[-3000:]
            try:
                last = self.up()
            except OSError:
                last = {}
            if set(last) == names and all(s["value"] == "1.0" for s in last.values()):
                return last
            time.sleep(0.05)
        missing, extra = sorted(names - set(last))[:5], sorted(set(last) - names)[:5]
        down = sorted(n for n, s in last.items() if s["value"] != "1.0")[:5]
        raise AssertionError(f"shard {self.shard}: missing {missing}, extra {extra}, down {down}")

    def stop(self) -> None:
        end_process(self.proc)

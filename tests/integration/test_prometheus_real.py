"""A real Prometheus scrapes a real `cachetop daemon` with the scrape config of docs/fleets.md,
and the documented queries return the exact numbers of known traffic on a real Redis.

Prometheus comes from apt (`make test` installs it when missing). A machine without it fails
this test, loudly: a skipped test would hide exactly the bug it is here for (series labelled
`instance`, renamed `exported_instance`, that no documented query matched).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.servers import LocalServer, free_port
from tests.conftest import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "fleets.md").read_text()
README = (ROOT / "README.md").read_text()
CACHE = "shop/cache-1"  # matches the documented `cache_instance=~"shop/.*"`
HITS, MISSES = 900, 100

RATIO_QUERY = (
    "100 * rate(cachetop_keyspace_hits_total[5m]) / (rate(cachetop_keyspace_hits_total[5m])"
    " + rate(cachetop_keyspace_misses_total[5m]))"
)
MISSED_QUERY = "increase(cachetop_keyspace_misses_total[1h])"
COMMANDS_RATE_QUERY = "rate(cachetop_commands_total[5m])"
ONE_CACHE_QUERY = 'cachetop_hit_ratio{cache_instance="shop/cache-1"}'
GAUGE_ALERT_QUERY = 'cachetop_hit_ratio{cache_instance=~"shop/.*"} < 0.8'
STATE_QUERY = 'cachetop_alert_state{state="firing"} == 1'


def documented_scrape_config() -> str:
    match = re.search(r"Scrape config:\n\n```yaml\n(.*?)```", DOCS, re.S)
    assert match, "docs/fleets.md has no 'Scrape config:' yaml block"
    return match.group(1)


def test_readme_and_docs_show_the_same_scrape_config_and_queries() -> None:
    assert documented_scrape_config() in README
    for query in (
        RATIO_QUERY,
        MISSED_QUERY,
        COMMANDS_RATE_QUERY,
        ONE_CACHE_QUERY,
        GAUGE_ALERT_QUERY,
        STATE_QUERY,
    ):
        assert f"`{query}`" in DOCS, query


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail(
            "prometheus is not installed: `make test` installs it (apt-get install prometheus),"
            " or install it yourself; this test must not be skipped"
        )
    return found


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    procs: list[subprocess.Popen[str]] = []

    def start(target_port: int) -> int:
        config = documented_scrape_config()
        config = config.replace("cachetop-host:9150", f"127.0.0.1:{target_port}")
        config = config.replace("scrape_interval: 15s", "scrape_interval: 1s")
        assert f"127.0.0.1:{target_port}" in config and "1s" in config
        (tmp_path / "prometheus.yml").write_text(config)
        port = free_port()
        log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115 - closed with the process
        procs.append(
            subprocess.Popen(
                [
                    prometheus_binary(),
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        log.close()
        wait_until(lambda: _ready(port), 30, "prometheus to be ready")
        return port

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def query(port: int, promql: str) -> list[dict]:  # type: ignore[type-arg]
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def values(port: int, promql: str) -> list[float]:
    return [float(r["value"][1]) for r in query(port, promql)]


def test_documented_queries_return_the_known_traffic(
    tmp_path: Path,
    redis: LocalServer,
    prometheus_for: callable,  # type: ignore[valid-type]
) -> None:
    client = redis_py.Redis(port=redis.port)
    client.set("present", "x")  # before cachetop starts: its counters start at its first poll
    config = tmp_path / "cachetop.toml"
    config.write_text(
        f"""
[settings]
interval = "200ms"
window = "60s"
state_dir = "{tmp_path / "state"}"

[[instance]]
name = "{CACHE}"
url = "{redis.url}"

[alerts]
instance_down = false

[[rule]]
name = "hit-ratio-below-95"
metric = "hit_ratio"
op = "<"
threshold = 95
"""
    )
    metrics_port = free_port()
    exe = Path(sys.executable).parent / "cachetop"
    daemon = subprocess.Popen(
        [str(exe), "daemon", "-c", str(config), "--metrics-port", str(metrics_port),
         "--metrics-addr", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CACHETOP_LOG": "WARNING"},
    )  # fmt: skip
    try:
        prom = prometheus_for(metrics_port)
        hits = f'cachetop_keyspace_hits_total{{cache_instance="{CACHE}"}}'
        # Prometheus holds the counters at 0 before the traffic, so rate() sees all of it.
        wait_until(lambda: values(prom, hits) == [0.0], 30, "a scrape with the counters at 0")
        pipe = client.pipeline(transaction=False)
        for _ in range(HITS):
            pipe.get("present")
        for n in range(MISSES):
            pipe.get(f"absent:{n}")
        pipe.execute()

        # The raw counters, exactly: our own polls and probes are not in them.
        misses = f'cachetop_keyspace_misses_total{{cache_instance="{CACHE}"}}'
        commands = f'cachetop_commands_total{{cache_instance="{CACHE}"}}'
        wait_until(lambda: values(prom, hits) == [HITS], 30, f"{hits} == {HITS}")
        assert values(prom, misses) == [MISSES]
        assert values(prom, commands) == [HITS + MISSES]

        # The series carry Prometheus's own job and instance (the target), and ours beside them.
        (series,) = query(prom, hits)
        labels = series["metric"]
        assert labels["job"] == "cachetop"
        assert labels["instance"] == f"127.0.0.1:{metrics_port}"
        assert labels["cache_instance"] == CACHE
        assert "exported_instance" not in labels

        # The documented queries. Both rates are extrapolated alike, so their ratio is exact.
        ratio = wait_until(lambda: values(prom, RATIO_QUERY), 30, "the documented hit ratio query")
        assert ratio == [pytest.approx(90.0, abs=1e-9)]
        (missed,) = values(prom, MISSED_QUERY)
        assert MISSES <= missed <= MISSES * 1.2  # increase() extrapolates to the end of the range
        (rate,) = values(prom, COMMANDS_RATE_QUERY)
        assert rate > 0
        assert values(prom, ONE_CACHE_QUERY) == [0.9]
        assert values(prom, GAUGE_ALERT_QUERY) == []  # 0.9 is not below 0.8
        assert values(prom, GAUGE_ALERT_QUERY.replace("0.8", "0.95")) == [0.9]
        (state,) = wait_until(lambda: query(prom, STATE_QUERY), 30, "the firing alert in Prometheus")
        assert state["metric"]["rule"] == "hit-ratio-below-95"
        assert state["metric"]["cache_instance"] == CACHE
        assert "exported_instance" not in state["metric"]
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=15)
        client.close()
    assert daemon.returncode == 0, err

"""Real Prometheus, Alertmanager and `cachetop daemon` processes for the fleet tests (issue 19).

Prometheus, promtool and Alertmanager come from Debian's packages (`make test` installs them
when missing). A missing binary fails the test, loudly: a skipped test would hide the bug.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cachetop.servers import free_port
from tests.conftest import wait_until

EXE = Path(sys.executable).parent / "cachetop"


def binary(name: str, package: str) -> str:
    # Debian names Alertmanager prometheus-alertmanager; Homebrew and the release tarballs, alertmanager.
    also = "alertmanager" if name == "prometheus-alertmanager" else name
    found = shutil.which(name) or shutil.which(also)
    if found is None:
        pytest.fail(f"{name} is not installed: `make test` installs it (apt-get install {package})")
    return found


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


class Processes:
    """Started processes, ended (terminate, then kill) when the test ends."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[str]] = []

    def spawn(
        self, argv: list[str], log_name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        log = open(self.tmp_path / log_name, "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
        )
        log.close()
        self.procs.append(proc)
        return proc

    def prometheus(self, config_yaml: str, *extra: str) -> int:
        (self.tmp_path / "prometheus.yml").write_text(config_yaml)
        port = free_port()
        self.spawn(
            [
                binary("prometheus", "prometheus"),
                f"--config.file={self.tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
                *extra,
            ],
            "prometheus.log",
        )
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/-/ready"), 30, "prometheus to be ready")
        return port

    def alertmanager(self, config_yaml: str, env: dict[str, str] | None = None) -> int:
        (self.tmp_path / "alertmanager.yml").write_text(config_yaml)
        port, cluster = free_port(), free_port()
        self.spawn(
            [
                binary("prometheus-alertmanager", "prometheus-alertmanager"),
                f"--config.file={self.tmp_path / 'alertmanager.yml'}",
                f"--storage.path={self.tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--cluster.listen-address=127.0.0.1:{cluster}",
                "--log.level=warn",
            ],
            "alertmanager.log",
            env,
        )
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/-/ready"), 30, "alertmanager to be ready")
        return port

    def daemon(self, config: Path, metrics_port: int, *extra: str, log_name: str = "daemon.log") -> None:
        argv = [str(EXE), "daemon", "-c", str(config), "--metrics-port", str(metrics_port)]
        self.spawn([*argv, "--metrics-addr", "127.0.0.1", *extra], log_name, {"CACHETOP_LOG": "WARNING"})

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    yield running
    running.stop()


def prom_query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def scrape_config(targets: list[int], interval: str = "1s", extra: str = "") -> str:
    listed = ", ".join(f'"127.0.0.1:{port}"' for port in targets)
    return (
        f"global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n{extra}"
        f"scrape_configs:\n  - job_name: cachetop\n    static_configs:\n      - targets: [{listed}]\n"
    )

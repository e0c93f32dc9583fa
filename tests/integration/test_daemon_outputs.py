"""`cachetop daemon --metrics-port --record` as a real process, with hot keys for a stampede rule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cachetop.exporters.recorder import Recording
from cachetop.servers import LocalServer, free_port
from tests.conftest import wait_until
from tests.monitoring import one_instance_toml

pytestmark = pytest.mark.slow


def scrape(port: int) -> dict[tuple[str, str], float]:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return {}
    return {
        (s.name, s.labels.get("cache_instance", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_daemon_serves_metrics_records_and_samples_hot_keys(tmp_path: Path, redis: LocalServer) -> None:
    config = tmp_path / "cachetop.toml"
    config.write_text(
        one_instance_toml(tmp_path, redis.url, window="2s")
        + """
[[rule]]
name = "stampedes"
metric = "stampede_events"
op = ">"
threshold = 0
"""
    )
    port = free_port()
    record = tmp_path / "run.db"
    exe = Path(sys.executable).parent / "cachetop"
    proc = subprocess.Popen(
        [
            str(exe),
            "daemon",
            "-c",
            str(config),
            "--metrics-port",
            str(port),
            "--metrics-addr",
            "127.0.0.1",
            "--record",
            str(record),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CACHETOP_LOG": "INFO"},
    )
    try:
        metrics = wait_until(
            lambda: (m := scrape(port)) and ("cachetop_ops_per_second", "cache-1") in m and m,
            deadline_s=15,
            what="cachetop_up on /metrics",
        )
        assert isinstance(metrics, dict)
        assert metrics[("cachetop_up", "cache-1")] == 1.0
        # Idle: neither our polls nor the hot-key sampler count as traffic. (A window that ends
        # while the sampler is starting up may hold a few of its commands in flight.)
        wait_until(
            lambda: scrape(port).get(("cachetop_ops_per_second", "cache-1")) == 0.0,
            deadline_s=15,
            what="0 ops/s on an idle server with the sampler running",
        )
        # The stampede rule needs request-level data: the daemon turned the hot-key sampler on.
        wait_until(
            lambda: scrape(port).get(("cachetop_stampede_events", "cache-1")) == 0.0,
            deadline_s=15,
            what="stampede_events from the hot-key sampler",
        )
        published = scrape(port)[("cachetop_snapshots_total", "")]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "hot keys on" in err
    assert "Traceback" not in err
    # Every snapshot the exporter had seen was recorded too (and perhaps a few after it).
    assert len(Recording.open(record)) >= published >= 1

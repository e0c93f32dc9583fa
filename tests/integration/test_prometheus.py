"""/metrics, parsed with prometheus-client's own parser, against the JSON snapshot of the same tick."""

from __future__ import annotations

import select
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import redis as redis_py
from prometheus_client.parser import text_string_to_metric_families

from cachetop.alerts.service import AlertService
from cachetop.engine.config import load_config
from cachetop.engine.monitor import Monitor
from cachetop.exporters import prometheus
from cachetop.exporters.outputs import attach_outputs
from cachetop.model import METRICS, Status
from cachetop.servers import LocalServer, free_port
from tests.conftest import until
from tests.monitoring import fast_config


def write_config(tmp_path: Path, redis: LocalServer, down_port: int) -> Path:
    path = tmp_path / "cachetop.toml"
    path.write_text(
        f"""
[settings]
interval = "200ms"
window = "2s"
timeout = "500ms"
state_dir = "{tmp_path / "state"}"

[[instance]]
name = "cache-1"
url = "{redis.url}"
tags = ["web"]

[[instance]]
name = "gone"
url = "redis://127.0.0.1:{down_port}"

[alerts]
instance_down = false

[[rule]]
name = "low-hit-ratio"
metric = "hit_ratio"
op = "<"
threshold = 50
severity = "critical"
instances = ["cache-1"]
"""
    )
    return path


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(inst: dict, **extra: str) -> tuple[tuple[str, str], ...]:  # type: ignore[type-arg]
    base = {
        "cache_instance": inst["name"],
        "kind": inst["kind"],
        "address": inst["address"],
        "role": "",
        "shard": "",
    }
    return tuple(sorted({**base, **extra}.items()))


async def test_metrics_match_the_json_snapshot_and_alert_states(tmp_path: Path, redis: LocalServer) -> None:
    config = load_config(write_config(tmp_path, redis, free_port()))
    client = redis_py.Redis(port=redis.port)
    stop = threading.Event()

    def misses() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            client.get(f"absent:{n}")
            time.sleep(0.002)

    worker = threading.Thread(target=misses, daemon=True)
    worker.start()
    try:
        async with AlertService(config) as alerts, Monitor(config) as monitor:
            alerts.attach(monitor)
            async with attach_outputs(monitor, alerts, metrics_port=0, metrics_addr="127.0.0.1") as out:
                port = out["exporter"].port
                await monitor.wait_snapshot(
                    lambda s: (
                        s.instances[0].metrics.get("ops_per_sec")
                        and s.instances[1].status == Status.DOWN
                        and alerts.engine.state("low-hit-ratio", "cache-1") == "firing"
                    ),
                    10,
                )
                monitor.pause()  # no new snapshot from here: the scrape and the JSON are the same tick
                snap = out["exporter"].collector.latest
                out_totals = dict(snap.instances[0].counters)
                samples = scrape(port)
    finally:
        stop.set()
        worker.join(5)
        client.close()
    doc = snap.to_json()
    assert samples[("cachetop_snapshot_timestamp_seconds", ())] == pytest.approx(doc["time"], abs=1e-3)
    checked = 0
    for inst in doc["instances"]:
        up = 1.0 if inst["status"] == "up" else 0.0
        assert samples[("cachetop_up", labels(inst))] == up
        assert samples[("cachetop_instance_status", labels(inst, status=inst["status"]))] == 1.0
        for name, info in METRICS.items():
            key = (f"cachetop_{info.prom_name}", labels(inst))
            value = inst["metrics"].get(name)
            if value is None:
                assert key not in samples, key  # no data is no sample, never a fake 0
                continue
            # The JSON rounds to 4 decimals in our unit; Prometheus gets the unrounded value.
            assert samples[key] == pytest.approx(
                value * info.prom_scale, rel=0, abs=0.51e-4 * info.prom_scale
            )
            checked += 1
    assert checked >= 12
    cache = doc["instances"][0]
    # Hand-checked units: all misses is a 0.0 ratio, memory in bytes, ops per second.
    assert samples[("cachetop_hit_ratio", labels(cache))] == 0.0
    assert samples[("cachetop_memory_used_bytes", labels(cache))] == cache["metrics"]["memory_used_bytes"]
    assert samples[("cachetop_ops_per_second", labels(cache))] == pytest.approx(
        cache["metrics"]["ops_per_sec"]
    )
    # Counters end in _total; every family carries the prefix.
    # the exporter saw every snapshot since it was attached: at least the one scraped here
    assert samples[("cachetop_snapshots_total", ())] >= 1
    assert float(samples[("cachetop_snapshots_total", ())]).is_integer()
    assert all(name.startswith("cachetop_") for name, _ in samples)
    # Each alert's state: one-hot over ok/pending/firing, only for instances the rule selects.
    alert = {"rule": "low-hit-ratio", "cache_instance": "cache-1", "severity": "critical"}
    for state, value in (("firing", 1.0), ("pending", 0.0), ("ok", 0.0)):
        assert samples[("cachetop_alert_state", tuple(sorted({**alert, "state": state}.items())))] == value
    assert samples[("cachetop_alert_flapping", tuple(sorted(alert.items())))] == 0.0
    assert not any(
        name == "cachetop_alert_state" and ("cache_instance", "gone") in lbl for name, lbl in samples
    )
    # `instance` is Prometheus's target label: none of our series carries it (it would be renamed
    # exported_instance and every documented query would match nothing).
    assert not any(dict(lbl).keys() & {"instance", "job"} for _, lbl in samples)
    # The running totals are counters, own polls left out: only misses were sent, never a hit.
    totals = out_totals
    assert samples[("cachetop_keyspace_hits_total", labels(cache))] == 0.0
    assert samples[("cachetop_keyspace_misses_total", labels(cache))] == totals["misses"] > 0
    assert samples[("cachetop_commands_total", labels(cache))] == totals["commands"] >= totals["misses"]
    assert samples[("cachetop_errors_total", labels(cache))] == 0.0
    assert samples[("cachetop_evicted_keys_total", labels(cache))] == 0.0
    assert samples[("cachetop_expired_keys_total", labels(cache))] == 0.0


def test_a_client_that_trickles_its_request_is_cut_off_at_the_total_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A byte every 0.1 s never trips a per-read timeout; the request deadline is for the whole."""
    monkeypatch.setattr(prometheus, "REQUEST_TIMEOUT_S", 0.5)
    exporter = prometheus.PrometheusExporter()
    port = exporter.serve(0, "127.0.0.1")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            started = time.monotonic()
            closed_after = None
            for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\n" * 10:
                try:
                    slow.sendall(bytes([byte]))
                except OSError:  # reset: the server has closed it
                    closed_after = time.monotonic() - started
                    break
                ready, _, _ = select.select([slow], [], [], 0.1)
                if ready and slow.recv(100) == b"":  # the server closed it
                    closed_after = time.monotonic() - started
                    break
            assert closed_after is not None and 0.5 <= closed_after < 1.5
        # The server is still there for a scraper that says what it wants.
        assert "cachetop_snapshots_total 0.0" in scrape_text(port)
    finally:
        exporter.close()


def scrape_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


async def test_hit_counter_goes_on_across_a_server_restart(redis: LocalServer) -> None:
    """A restart resets the server's keyspace_hits to 0; our _total adds what it counts since."""
    seen: list[float] = []

    def hits(port: int) -> float | None:
        values = [v for (name, _), v in scrape(port).items() if name == "cachetop_keyspace_hits_total"]
        if values:
            seen.append(values[0])
        return values[0] if values else None

    def read(times: int) -> None:
        client = redis_py.Redis(port=redis.port)
        client.set("k", "v")
        for _ in range(times):
            client.get("k")
        client.close()

    async with (
        Monitor(fast_config(redis.url, interval=0.1)) as monitor,
        attach_outputs(monitor, None, metrics_port=0, metrics_addr="127.0.0.1") as out,
    ):
        port = out["exporter"].port
        await until(lambda: hits(port) == 0.0, 10, "the counter at 0")
        read(30)
        await until(lambda: hits(port) == 30.0, 10, "30 hits")
        # The restart and 20 reads happen between two polls: the next poll finds keyspace_hits
        # at 20, below the 30 it saw last, on a new run_id.
        monitor.pause()
        redis.restart()
        read(20)
        monitor.resume()
        await until(lambda: hits(port) == 50.0, 10, "30 + 20 hits")
    assert seen == sorted(seen) and set(seen) <= {0.0, 30.0, 50.0}, seen  # never down

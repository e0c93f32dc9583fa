"""Prometheus exposition of the latest Snapshot, through prometheus-client.

A custom Collector renders whatever Snapshot the Monitor published last, so a scrape costs no
poll and shows exactly the numbers the dashboard and `snapshot --json` show, in Prometheus
units: every metric of the registry as `cachetop_<prom_name>` (ratios 0..1, seconds, bytes),
labelled by instance, kind, address, role and shard. Counters end in `_total`. With an
AlertService attached, every (rule, instance) pair the rule selects gets its state.

    exporter = PrometheusExporter()
    monitor.subscribe(exporter.on_snapshot)
    exporter.serve(9150)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cachetop.model import METRICS, InstanceMetrics, Snapshot, Status

PREFIX = "cachetop_"
LABELS = ("instance", "kind", "address", "role", "shard")
ALERT_STATES = ("ok", "pending", "firing")


def instance_labels(inst: InstanceMetrics) -> list[str]:
    return [inst.name, inst.kind, inst.address, inst.role or "", inst.shard or ""]


class SnapshotCollector(Collector):
    """Renders the latest Snapshot (and alert states) on every scrape."""

    def __init__(self, alerts: Any = None) -> None:
        self.alerts = alerts
        self.latest: Snapshot | None = None
        self.snapshots = 0
        self._lock = threading.Lock()  # scrapes run in the HTTP server's thread

    def on_snapshot(self, snapshot: Snapshot) -> None:
        with self._lock:
            self.latest = snapshot
            self.snapshots += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snap, count = self.latest, self.snapshots
        yield CounterMetricFamily(
            f"{PREFIX}snapshots", "Snapshots the monitor published since cachetop started.", value=count
        )
        if snap is None:
            return
        yield GaugeMetricFamily(
            f"{PREFIX}snapshot_timestamp_seconds", "Wall-clock time of the snapshot shown.", value=snap.time
        )
        yield GaugeMetricFamily(
            f"{PREFIX}window_seconds", "Sliding window of the rates and ratios.", value=snap.window_s
        )
        up = GaugeMetricFamily(
            f"{PREFIX}up", "1 when the last poll of the instance succeeded.", labels=LABELS
        )
        status = GaugeMetricFamily(
            f"{PREFIX}instance_status",
            "1 for the instance's current status (up, down, auth_failed, loading, unknown).",
            labels=(*LABELS, "status"),
        )
        for inst in snap.instances:
            labels = instance_labels(inst)
            up.add_metric(labels, 1.0 if inst.status == Status.UP else 0.0)
            for value in Status:
                status.add_metric([*labels, str(value)], 1.0 if inst.status == value else 0.0)
        yield up
        yield status
        for name, info in METRICS.items():
            family = GaugeMetricFamily(f"{PREFIX}{info.prom_name or name}", info.help, labels=LABELS)
            for inst in snap.instances:
                value = inst.metrics.get(name)
                if value is not None:
                    family.add_metric(instance_labels(inst), float(value) * info.prom_scale)
            if family.samples:
                yield family
        if self.alerts is not None:
            yield from self._alert_families(snap)

    def _alert_families(self, snap: Snapshot) -> Iterator[Metric]:
        engine = getattr(self.alerts, "engine", None)
        rules = getattr(self.alerts, "rules", ())
        if engine is None:
            return
        state = GaugeMetricFamily(
            f"{PREFIX}alert_state",
            "1 for each alert's current state (ok, pending, firing), per rule and instance.",
            labels=("rule", "instance", "severity", "state"),
        )
        for rule in rules:
            for inst in snap.instances:
                if not rule.selects(inst):
                    continue
                now = str(engine.state(rule.name, inst.name))
                now = "ok" if now == "resolved" else now
                for name in ALERT_STATES:
                    state.add_metric([rule.name, inst.name, rule.severity, name], 1.0 if now == name else 0.0)
        yield state
        view = self.alerts.state(history=0, problems=0)
        yield GaugeMetricFamily(
            f"{PREFIX}alert_notifications_queued",
            "Notifications waiting in the outbox (not yet delivered).",
            value=view.queued,
        )
        yield CounterMetricFamily(
            f"{PREFIX}alert_state_write_errors",
            "Writes to the alert outbox the state dir refused (full disk, read-only, I/O error),"
            " retries included.",
            value=view.write_errors,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}alert_unpersisted_changes",
            "Alert outbox changes held in memory only because the state dir refuses writes;"
            " 0 when everything is saved.",
            value=view.unpersisted,
        )


class PrometheusExporter:
    """A registry of its own (no process metrics of the default one) served over HTTP."""

    def __init__(self, alerts: Any = None) -> None:
        self.collector = SnapshotCollector(alerts)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def on_snapshot(self, snapshot: Snapshot) -> None:
        self.collector.on_snapshot(snapshot)

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Starts /metrics in a daemon thread; returns the port (useful with port 0)."""
        self._server, self._thread = start_http_server(port, addr=addr, registry=self.registry)
        return int(self._server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

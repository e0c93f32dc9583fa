"""Prometheus exposition of the latest Snapshot, through prometheus-client.

A custom Collector renders whatever Snapshot the Monitor published last, so a scrape costs no
poll and shows exactly the numbers the dashboard and `snapshot --json` show, in Prometheus
units: every metric of the registry as `cachetop_<prom_name>` (ratios 0..1, seconds, bytes),
labelled by cache_instance, kind, address, role and shard, and the running totals of hits,
misses, commands, errors, evictions and expirations (metrics/totals.py) as counters ending in
`_total`, for `rate()`. With an AlertService attached, every (rule, instance) pair the rule
selects gets its state.

The cache is `cache_instance`, never `instance`: Prometheus sets `instance` to the scraped
target (this exporter's host:port) and, under the default `honor_labels: false`, renames a
clashing label of ours to `exported_instance`, so queries on `instance` would match nothing.

    exporter = PrometheusExporter()
    monitor.subscribe(exporter.on_snapshot)
    exporter.serve(9150)

The HTTP side is one thread running its own asyncio loop (scrapes never wait on the monitor's
loop, and a slow collect never stalls polling): at most MAX_CONNECTIONS sockets open, each
with REQUEST_TIMEOUT_S to send its request, so idle or trickling connections cost no thread and
cannot lock a real scraper out (a new connection closes the oldest one still idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from cachetop.metrics.totals import COUNTERS, COUNTERS_HELP_SUFFIX
from cachetop.model import METRICS, InstanceMetrics, Snapshot, Status

log = logging.getLogger("cachetop.exporters")

PREFIX = "cachetop_"
INSTANCE_LABEL = "cache_instance"  # not `instance`: that one is Prometheus's target label
LABELS = (INSTANCE_LABEL, "kind", "address", "role", "shard")
ALERT_STATES = ("ok", "pending", "firing")
MAX_CONNECTIONS = 64
REQUEST_TIMEOUT_S = 10.0  # to send the request line and headers, in all (not per read)
WRITE_TIMEOUT_S = 30.0  # for the client to take the answer
MAX_REQUEST_BYTES = 16 * 1024


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
        # The tags (the dashboard groups by the first), for a dashboard that reads Prometheus.
        info = GaugeMetricFamily(
            f"{PREFIX}instance_info",
            "Always 1; tags: the instance's tags, comma-separated.",
            labels=(*LABELS, "tags"),
        )
        for inst in snap.instances:
            info.add_metric([*instance_labels(inst), ",".join(inst.tags)], 1.0)
        yield info
        for name, info in METRICS.items():
            family = GaugeMetricFamily(f"{PREFIX}{info.prom_name or name}", info.help, labels=LABELS)
            for inst in snap.instances:
                value = inst.metrics.get(name)
                if value is not None:
                    family.add_metric(instance_labels(inst), float(value) * info.prom_scale)
            if family.samples:
                yield family
        for counter in COUNTERS:
            total = CounterMetricFamily(
                f"{PREFIX}{counter.prom_name}", counter.help + COUNTERS_HELP_SUFFIX, labels=LABELS
            )
            for inst in snap.instances:
                value = inst.counters.get(counter.name)
                if value is not None:
                    total.add_metric(instance_labels(inst), float(value))
            if total.samples:
                yield total
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
            labels=("rule", INSTANCE_LABEL, "severity", "state"),
        )
        flapping = GaugeMetricFamily(
            f"{PREFIX}alert_flapping",
            "1 while an alert is flapping (its notices are held back until it settles).",
            labels=("rule", INSTANCE_LABEL, "severity"),
        )
        for rule in rules:
            for inst in snap.instances:
                if not rule.selects(inst):
                    continue
                now = str(engine.state(rule.name, inst.name))
                now = "ok" if now == "resolved" else now
                for name in ALERT_STATES:
                    state.add_metric([rule.name, inst.name, rule.severity, name], 1.0 if now == name else 0.0)
                flaps = 1.0 if engine.flapping(rule.name, inst.name) else 0.0
                flapping.add_metric([rule.name, inst.name, rule.severity], flaps)
        yield state
        yield flapping
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

    def __init__(self, alerts: Any = None, *, api: Any = None, ssl: Any = None) -> None:
        # api: exporters/api.ApiServer, answering /api/v1/* on this port; ssl: an SSLContext (TLS).
        self.api = api
        self.ssl = ssl
        self.collector = SnapshotCollector(alerts)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Open connections, oldest first; True once its request has arrived (it is being answered).
        self._connections: dict[asyncio.StreamWriter, bool] = {}

    def on_snapshot(self, snapshot: Snapshot) -> None:
        self.collector.on_snapshot(snapshot)

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Starts /metrics in a daemon thread; returns the port (useful with port 0).
        OSError (e.g. the port is taken) is raised here."""
        started: dict[str, Any] = {}
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                server = loop.run_until_complete(
                    asyncio.start_server(
                        self._handle, addr, port, limit=MAX_REQUEST_BYTES, backlog=128,
                        ssl=self.ssl, ssl_handshake_timeout=REQUEST_TIMEOUT_S if self.ssl else None,
                    )
                )  # fmt: skip
            except OSError as exc:
                started["error"] = exc
                ready.set()
                loop.close()
                return
            self._loop = loop
            if self.api is not None:
                self.api.loop = loop
            started["port"] = server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                server.close()
                for writer in list(self._connections):
                    writer.close()
                loop.run_until_complete(asyncio.sleep(0))  # let the handlers see their sockets close
                # API streams wait for the next snapshot, not on their socket: end them too.
                left = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in left:
                    task.cancel()
                if left:
                    loop.run_until_complete(asyncio.wait(left, timeout=2))
                loop.close()

        self._thread = threading.Thread(target=run, name="cachetop-metrics", daemon=True)
        self._thread.start()
        ready.wait()
        if "error" in started:
            self._thread.join()
            self._thread = None
            raise started["error"]
        self.port = int(started["port"])
        return self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= MAX_CONNECTIONS:
            idle = next((w for w, busy in self._connections.items() if not busy), None)
            if idle is None:  # all busy answering: this one waits for nobody
                writer.close()
                return
            idle.close()  # its handler sees the end of the stream and forgets it
            self._connections.pop(idle, None)
        self._connections[writer] = False
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
            self._connections[writer] = True
            if head.split(b" ", 2)[1:2] and head.split(b" ", 2)[1].startswith(b"/api/"):
                with contextlib.suppress(asyncio.CancelledError):  # the exporter closes
                    await self._api(head, reader, writer)
                return
            writer.write(self._answer(head))
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that went away, or never said what it wanted
        finally:
            self._connections.pop(writer, None)
            writer.close()

    async def _api(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """/api/v1/*: exporters/api.py. A stream is long-lived: it leaves the /metrics connection
        count (the API caps its streams itself), so viewers never lock a scraper out."""
        from cachetop.exporters.api import parse_request

        self._connections.pop(writer, None)
        peer = writer.get_extra_info("peername")
        request = parse_request(head, f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "")
        if self.api is None or request is None:
            body = b'{"error":"the API is off: set [settings] api_token in the daemon\'s config"}\n'
            writer.write(_response(404, "application/json", body))
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)
            return
        await self.api.handle(request, reader, writer)

    def _answer(self, head: bytes) -> bytes:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _response(400, "text/plain", b"bad request\n")
        method = parts[0]
        if method not in ("GET", "HEAD"):
            return _response(405, "text/plain", b"only GET and HEAD\n")
        accept = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "accept":
                accept = value.strip()
        encoder, content_type = choose_encoder(accept)
        try:
            body = encoder(self.registry)
        except Exception as exc:  # a bug in a collector: say so to the scraper, keep serving
            log.error("/metrics: collecting failed: %s", type(exc).__name__)
            return _response(500, "text/plain", f"collecting failed: {type(exc).__name__}\n".encode())
        return _response(200, content_type, body, head_only=method == "HEAD")

    def close(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
}


def _response(status: int, content_type: str, body: bytes, *, head_only: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + (b"" if head_only else body)

"""PrometheusSource: the dashboard on a whole fleet that any number of daemons export.

    cachetop --source prometheus://prometheus.internal:9090
    cachetop --source 'prometheus://prom:9090?match=region="eu"'

Each refresh asks Prometheus one instant query per metric (never one per instance), all at the
same evaluation time, and builds a Snapshot from the answers (sources/prom_snapshot.py): the
overview, its groups (the first tag) and sorting work as on live data. When the dashboard
starts, one `query_range` per charted metric fills the detail view's charts with the recent
past. The source can pause, refresh and change pace; it cannot act (no server behind it): hot
keys, slowlog, clients and actions live in the daemon that owns the instance, which the detail
view's facts name (`cachetop --attach http://DAEMON`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from cachetop.engine.source import SourceBase, SourceCapabilities, Subscriber
from cachetop.metrics.registry import charted
from cachetop.metrics.totals import COUNTERS
from cachetop.model import METRICS, Snapshot
from cachetop.sources.prom_snapshot import FleetReading, build_snapshot, choose_owners, history_frames
from cachetop.sources.promql import PromClient, PromError, PromUrl, Series
from cachetop.util.aio import cancel_and_wait

log = logging.getLogger("cachetop.sources.prometheus")

PREFIX = "cachetop_"
DEFAULT_INTERVAL_S = 5.0
HISTORY_SPAN_S = 600.0  # the charts' past, filled at start
HISTORY_MAX_POINTS = 120
HISTORY_MAX_VALUES = 1_000_000  # instances x charted metrics x points: fewer points for a huge fleet
SUBSCRIBER_WAIT_S = 5.0  # the past is delivered once the dashboard listens (or after this)
# An empty fleet at start is read again before it is an error: a failed scrape empties a daemon's
# series until its next scrape.
EMPTY_RETRIES = 2
EMPTY_RETRY_S = 1.0


class PrometheusSource(SourceBase):
    capabilities = SourceCapabilities(pause=True, refresh=True, pace=True)

    def __init__(
        self,
        url: str | PromUrl,
        *,
        interval: float = DEFAULT_INTERVAL_S,
        history: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(interval=interval)
        self.url = url if isinstance(url, PromUrl) else PromUrl.parse(url)
        self.client = PromClient(self.url)
        self.history = history
        self.clock = clock
        self.error: str | None = None  # the last refresh's failure, None once one succeeds
        self._wake = asyncio.Event()
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._first: Snapshot | None = None

    # --- the Source protocol ----------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        unsubscribe = super().subscribe(callback)
        self._listening.set()
        return unsubscribe

    async def start(self) -> None:
        """Reads the fleet once (PromError, one line, when Prometheus cannot answer), then keeps
        reading every interval in a task."""
        self._first = await self.read()
        for _ in range(EMPTY_RETRIES):
            if self._first.instances:
                break
            await asyncio.sleep(EMPTY_RETRY_S)
            self._first = await self.read()
        if not self._first.instances:
            narrowed = f" matching {self.url.match}" if self.url.match else ""
            raise PromError(
                f"Prometheus at {self.url.where} holds no cachetop_up series{narrowed}: does it scrape the"
                " daemons' /metrics (cachetop daemon --metrics-port)?"
            )
        self.latest = self._first
        self._task = asyncio.create_task(self._run(), name="prometheus-source")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None

    def refresh_now(self) -> None:
        self._wake.set()

    def set_interval(self, seconds: float) -> None:
        super().set_interval(max(0.5, seconds))
        self._wake.set()

    def resume(self) -> None:
        super().resume()
        self._wake.set()

    # --- reading ----------------------------------------------------------------------------------

    async def read(self, at: float | None = None) -> Snapshot:
        """One Snapshot of the whole fleet at `at` (now): one query per metric."""
        at = self.clock() if at is None else at
        sel = self.url.selector
        names = list(METRICS)
        counters = [c.name for c in COUNTERS]
        queries = [
            sel(f"{PREFIX}up"),
            sel(f"{PREFIX}instance_status") + " == 1",
            sel(f"{PREFIX}instance_info"),
            sel(f"{PREFIX}window_seconds"),
            sel(f"{PREFIX}snapshot_timestamp_seconds"),
            *(sel(f"{PREFIX}{METRICS[n].prom_name or n}") for n in names),
            *(sel(f"{PREFIX}{c.prom_name}_total") for c in COUNTERS),
        ]
        answers = await asyncio.gather(*(self.client.query(q, at=at) for q in queries))
        up, status, info, windows, stamps = answers[:5]
        metrics = dict(zip(names, answers[5 : 5 + len(names)], strict=True))
        totals = dict(zip(counters, answers[5 + len(names) :], strict=True))
        reading = FleetReading(at, up, status, info, metrics, totals, windows, stamps)
        return build_snapshot(reading, self.latest)

    async def past(self, live: Snapshot) -> list[Snapshot]:
        """The recent past of the charted metrics (one query_range each), as Snapshots."""
        instances = max(1, len(live.instances))
        metrics = [n for n in charted() if n in METRICS]
        points = min(HISTORY_MAX_POINTS, HISTORY_MAX_VALUES // (instances * max(1, len(metrics))))
        if points < 2 or not metrics:
            return []
        step = max(self.interval, HISTORY_SPAN_S / points)
        start, end = live.time - step * points, live.time - step
        sel = self.url.selector
        answers = await asyncio.gather(
            *(
                self.client.query_range(
                    sel(f"{PREFIX}{METRICS[n].prom_name or n}"), start=start, end=end, step=step
                )
                for n in metrics
            )
        )
        up = await self.client.query(sel(f"{PREFIX}up"), at=live.time)
        charted_series: Mapping[str, Sequence[Series]] = dict(zip(metrics, answers, strict=True))
        return history_frames(live, charted_series, choose_owners(up))

    async def _run(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), SUBSCRIBER_WAIT_S)
        first = self._first
        if first is not None:
            if self.history:
                try:
                    for frame in await self.past(first):
                        await self.deliver(frame)
                except PromError as exc:
                    log.warning("the charts' past: %s", exc)
            await self.deliver(first)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()  # after the wait: a refresh asked during a read is not lost
            await self.wait_running()
            try:
                snap = await self.read()
                self.error = None
            except PromError as exc:
                if self.error != str(exc):
                    log.warning("%s", exc)
                self.error = str(exc)
                if self.latest is None:
                    continue
                # The last numbers stay on screen, marked stale, until Prometheus answers again.
                stale = tuple(replace(i, stale=True) for i in self.latest.instances)
                snap = replace(self.latest, instances=stale)
            await self.deliver(snap)


async def read_once(url: str, at: float | None = None) -> Snapshot:
    """The fleet at one time, without starting a source (`snapshot`-like uses, tests)."""
    return await PrometheusSource(url, history=False).read(at)

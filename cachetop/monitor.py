"""The Monitor owns time: it polls every instance on its own schedule, probes latency between
polls, marks instances up or down, and publishes immutable Snapshots to subscribers.

Each instance has its own Poller task, so a dead or slow instance only ever delays itself.
Probes run in the same loop on sockets of their own, timed by the kernel (backends/probe.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cachetop.aio import Callbacks, cancel_and_wait
from cachetop.backends import Backend, BackendError, make_backend
from cachetop.config import Config, InstanceConfig
from cachetop.metrics.latency import QuantileWindow
from cachetop.metrics.window import CounterWindow, command_stats, server_latency, windowed_metrics
from cachetop.model import CORE_METRICS, InstanceMetrics, Snapshot, Status

log = logging.getLogger(__name__)

PROBES_PER_INTERVAL = 3
DETAIL_EVERY_S = 5.0
MAX_CONCURRENT_POLLS = 64
ROLES = {"master": "master", "slave": "replica"}  # INFO role -> what we show

Subscriber = Callable[[Snapshot], Any]


class Poller:
    """Polls one instance forever; holds its windows and its current status."""

    def __init__(
        self,
        inst: InstanceConfig,
        backend: Backend,
        *,
        interval: float,
        timeout: float,
        window_s: float,
        clock: Callable[[], float],
        wall: Callable[[], float],
        poll_slots: asyncio.Semaphore,
    ) -> None:
        self.inst = inst
        self.backend = backend
        self.interval = interval
        self.timeout = timeout
        self.clock, self.wall = clock, wall
        self.poll_slots = poll_slots
        self.window = CounterWindow(window_s)
        # About five sketches per window: each snapshot merges them, so more would cost CPU
        # (a fleet of 200 reads 200 windows a second) for a sharper edge nobody sees.
        self.latency = QuantileWindow(window_s, bucket_s=max(interval, window_s / 5, 0.1))
        self.status = Status.UNKNOWN
        self.error: str | None = None
        self.last_poll_wall: float | None = None
        self.polls = 0
        self.detail_wanted = False
        self._set_detail_cadence()
        self._waiter: asyncio.Future[bool] | None = None
        self.polled = asyncio.Event()  # set after every poll; tests and `snapshot` wait on it
        # Cluster nodes: set by cachetop.cluster from CLUSTER NODES; the role is refreshed by
        # every poll (INFO role), so a promoted replica shows without waiting for re-discovery.
        self.role: str | None = None
        self.shard: str | None = None
        self.extras: dict[str, Any] = {}
        # Metrics other components measure for this instance (stampede_events from hot keys).
        self.extra_metrics: dict[str, float | int | None] = {}

    def set_window(self, window_s: float) -> None:
        self.window.window_s = window_s
        self.latency.window_s = window_s
        self._set_detail_cadence()

    def _set_detail_cadence(self) -> None:
        """Per-command figures come with one poll in several (they cost the most to fetch and
        parse); at least two must fall in every window, and every poll while someone looks."""
        if hasattr(self.backend, "detail_every_s"):
            every = 0.0 if self.detail_wanted else min(DETAIL_EVERY_S, self.window.window_s / 2)
            self.backend.detail_every_s = every

    def want_detail(self, wanted: bool) -> None:
        """The dashboard's instance view asks for per-command figures on every poll while open."""
        self.detail_wanted = wanted
        self._set_detail_cadence()

    async def poll_once(self) -> None:
        now = self.clock()
        try:
            async with self.poll_slots:
                # Stamped once we hold a slot, at the middle of the round trip: queueing for a
                # slot must not stretch the Δt that rates divide by.
                start = self.clock()
                # asyncio.timeout, not wait_for: no extra Task whose late exception could be
                # left unretrieved (and printed) when the Monitor stops mid-poll.
                async with asyncio.timeout(self.timeout):
                    sample = await self.backend.poll(start)
                now = (start + self.clock()) / 2
                sample = replace(sample, time=now)
        except TimeoutError:
            self._fail(now, Status.DOWN, f"timed out after {self.timeout:g}s")
        except BackendError as exc:
            self._fail(now, exc.status, exc.reason)
        except Exception as exc:  # a bug must show as a reason, not freeze the row
            log.exception("%s: poll failed", self.inst.name)
            self._fail(now, Status.DOWN, f"internal error: {type(exc).__name__} (see the log)")
        else:
            self.window.add(sample)
            self.status, self.error = Status.UP, None
            self.last_poll_wall = self.wall()
        self.polls += 1
        self.polled.set()

    def _fail(self, now: float, status: Status, reason: str) -> None:
        if self.status != status or self.error != reason:
            log.info("%s: %s (%s)", self.inst.name, status, reason)
        self.status, self.error = status, reason
        self.window.record_failure(now)

    async def probe_once(self) -> None:
        try:
            elapsed = await self.backend.probe()
        except TimeoutError:
            # A timed-out probe is a real, very slow round trip: count it at the timeout.
            elapsed = self.timeout
        except OSError:
            elapsed = None  # refused or reset: the next poll will say why
        if elapsed is not None:
            self.latency.add(elapsed * 1000.0, self.clock())

    async def run(self, paused: asyncio.Event) -> None:
        while True:
            await paused.wait()
            tick = self.clock()
            await self.poll_once()
            if self.status == Status.UP:
                await self._probe_until(tick + self.interval)
            await self._sleep_until(tick + self.interval)

    async def _probe_until(self, deadline: float) -> None:
        step = self.interval / PROBES_PER_INTERVAL
        start = self.clock()
        for i in range(PROBES_PER_INTERVAL):
            if not await self._sleep_until(start + step * (i + 0.5)):
                return  # woken for an immediate refresh
            if self.clock() >= deadline:
                return
            await self.probe_once()

    async def _sleep_until(self, when: float) -> bool:
        """Sleeps until `when`; returns False when woken early by wake_up() (refresh now).

        A bare future and a timer: wait_for() would create a Task per sleep, and a fleet of
        200 instances sleeps a thousand times a second."""
        delay = when - self.clock()
        if delay <= 0:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        timer = loop.call_later(delay, lambda: waiter.done() or waiter.set_result(True))
        self._waiter = waiter
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def wake_up(self) -> None:
        """Ends the current sleep at once (a refresh now)."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(False)

    def metrics(self) -> InstanceMetrics:
        now = self.clock()
        up = self.status == Status.UP
        values: dict[str, float | int | None] = {}
        facts: dict[str, str] = {}
        commands = {}
        memory_from = None
        if up and self.window.latest is not None:
            latest = self.window.latest
            values.update(windowed_metrics(self.window))
            p50, p95, p99 = self.latency.quantiles(now, (0.50, 0.95, 0.99))
            values.update(latency_p50_ms=p50, latency_p95_ms=p95, latency_p99_ms=p99)
            values.update(server_latency(self.window))
            values.update(self.extra_metrics)
            facts = dict(latest.facts)
            commands = command_stats(self.window)
            memory_from = "system" if latest.gauges.get("memory_max_is_system") else "maxmemory"
            if self.role is not None and facts.get("role") in ROLES:
                self.role = ROLES[facts["role"]]
        else:
            values = dict.fromkeys(CORE_METRICS)
        return InstanceMetrics(
            name=self.inst.name,
            kind=self.backend.kind,
            # A sentinel-followed instance lives wherever the current master is.
            address=getattr(self.backend, "address", None) or self.inst.target.address,
            status=self.status,
            error=self.error,
            metrics=values,
            tags=self.inst.tags,
            facts=facts,
            memory_max_from=memory_from,
            commands=commands,
            last_poll=self.last_poll_wall,
            role=self.role,
            shard=self.shard,
            extras=dict(self.extras),
        )


class Monitor:
    """Runs one Poller per instance and publishes a Snapshot every `settings.interval`.

    Use as `async with Monitor(config) as mon:`; subscribers are plain callables run in the
    event loop with each Snapshot (keep them quick; hand heavy work to a task or thread).
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        backend_factory: Callable[[InstanceConfig, float], Backend] = make_backend,
    ) -> None:
        self.config = config
        self.clock, self.wall = clock, wall
        self.interval = config.settings.interval
        self.window_s = config.settings.window
        self._backend_factory = backend_factory
        self._subscribers: Callbacks[Subscriber] = Callbacks()
        self._before_snapshot: Callbacks[Callable[[], None]] = Callbacks()
        self._tasks: list[asyncio.Task[None]] = []
        self._poll_tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_POLLS)
        self.watchers: list[Any] = []  # cluster watchers (cachetop.cluster), one per cluster target
        self.pollers: list[Poller] = []
        self.latest: Snapshot | None = None
        self._published = asyncio.Condition()
        self._running = asyncio.Event()  # cleared while paused
        self._publish_wake = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._running.set()
        for inst in self.config.instances:
            if inst.cluster:
                from cachetop.cluster import ClusterWatcher

                watcher = ClusterWatcher(self, inst)
                self.watchers.append(watcher)
                await watcher.start()  # discovers the nodes and adds one poller per node
                self._tasks.append(asyncio.create_task(watcher.run(), name=f"cluster {inst.name}"))
            else:
                self.add_instance(inst)
        self._tasks.append(asyncio.create_task(self._publish_loop(), name="publish"))

    def _make_backend(self, inst: InstanceConfig, timeout: float) -> Backend:
        if inst.target.mode == "sentinel":
            from cachetop.sentinel import SentinelBackend

            return SentinelBackend(inst, timeout, self._backend_factory)
        return self._backend_factory(inst, timeout)

    def add_instance(self, inst: InstanceConfig, index: int | None = None) -> Poller:
        """Starts polling one more instance (cluster discovery adds nodes as they appear)."""
        timeout = self.config.timeout_of(inst)
        poller = Poller(
            inst,
            self._make_backend(inst, timeout),
            interval=self.interval if inst.interval is None else inst.interval,
            timeout=timeout,
            window_s=self.window_s,
            clock=self.clock,
            wall=self.wall,
            poll_slots=self._slots,
        )
        self.pollers.insert(len(self.pollers) if index is None else index, poller)
        self._poll_tasks[inst.name] = asyncio.create_task(poller.run(self._running), name=f"poll {inst.name}")
        return poller

    async def remove_instance(self, name: str) -> None:
        """Stops polling an instance and closes its connections (a node left the cluster)."""
        task = self._poll_tasks.pop(name, None)
        if task is not None:
            await cancel_and_wait([task])
        for poller in [p for p in self.pollers if p.inst.name == name]:
            self.pollers.remove(poller)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(poller.backend.close(), 2.0)

    async def stop(self) -> None:
        await cancel_and_wait([*self._tasks, *self._poll_tasks.values()])
        self._tasks.clear()
        self._poll_tasks.clear()
        for watcher in self.watchers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(watcher.close(), 2.0)
        for poller in self.pollers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(poller.backend.close(), 2.0)

    async def __aenter__(self) -> Monitor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- subscribers --------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        return self._subscribers.add(callback)

    def before_snapshot(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Runs callback before every snapshot is built: components beside the Monitor (hot
        keys) refresh Poller.extras / extra_metrics there, so a snapshot is never a tick stale."""
        return self._before_snapshot.add(callback)

    def snapshot(self) -> Snapshot:
        for callback in self._before_snapshot:
            try:
                callback()
            except Exception:
                log.exception("a before-snapshot hook failed")
        return Snapshot(
            time=self.wall(),
            window_s=self.window_s,
            instances=tuple(p.metrics() for p in self.pollers),
        )

    async def publish(self) -> Snapshot:
        snap = self.snapshot()
        self.latest = snap
        for callback in self._subscribers:
            try:
                result = callback(snap)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("a snapshot subscriber failed")
        async with self._published:
            self._published.notify_all()
        return snap

    async def _publish_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._publish_wake.wait(), self.interval)
                self._publish_wake.clear()
            except TimeoutError:
                pass
            await self._running.wait()
            await self.publish()

    async def wait_snapshot(
        self, predicate: Callable[[Snapshot], bool] = lambda s: True, timeout: float = 30.0
    ) -> Snapshot:
        """The next published Snapshot for which predicate holds; TimeoutError at the deadline."""

        async def wait() -> Snapshot:
            async with self._published:
                while True:
                    await self._published.wait()
                    if self.latest is not None and predicate(self.latest):
                        return self.latest

        return await asyncio.wait_for(wait(), timeout)

    async def wait_polls(self, count: int, timeout: float = 30.0) -> None:
        """Waits until every instance has been polled at least `count` times."""

        async def wait() -> None:
            for poller in self.pollers:
                while poller.polls < count:
                    poller.polled.clear()
                    await poller.polled.wait()

        await asyncio.wait_for(wait(), timeout)

    # --- controls (TUI keys) ------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def refresh_now(self) -> None:
        for poller in self.pollers:
            poller.wake_up()
        self._publish_wake.set()

    def set_interval(self, seconds: float) -> None:
        seconds = max(0.1, seconds)
        self.interval = seconds
        for poller in self.pollers:
            poller.interval = seconds
        if self.window_s < seconds:
            self.set_window(seconds)

    def set_window(self, seconds: float) -> None:
        self.window_s = seconds
        for poller in self.pollers:
            poller.set_window(seconds)

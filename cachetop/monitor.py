"""The Monitor owns time: it polls every instance on its own schedule, probes latency between
polls, marks instances up or down, and publishes immutable Snapshots to subscribers.

Each instance has its own Poller (cachetop/poller.py), so a dead or slow instance only ever
delays itself; the Monitor adds and removes them, and builds the Snapshots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from cachetop.aio import Callbacks, cancel_and_wait
from cachetop.backends import Backend, make_backend
from cachetop.config import Config, InstanceConfig
from cachetop.model import Snapshot
from cachetop.poller import Poller

log = logging.getLogger(__name__)

MAX_CONCURRENT_POLLS = 64

Subscriber = Callable[[Snapshot], Any]


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
        # Told of every poller added or removed after start (cluster nodes joining, leaving).
        self.on_added: Callbacks[Callable[[Poller], None]] = Callbacks()
        self.on_removed: Callbacks[Callable[[Poller], None]] = Callbacks()
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
        try:
            await self._start_instances()
        except BaseException:
            await self.stop()  # pollers already started must not outlive a failed start
            raise
        self._tasks.append(asyncio.create_task(self._publish_loop(), name="publish"))

    async def _start_instances(self) -> None:
        for inst in self.config.instances:
            if inst.cluster:
                from cachetop.cluster import ClusterWatcher

                watcher = ClusterWatcher(self, inst)
                self.watchers.append(watcher)
                await watcher.start()  # discovers the nodes and adds one poller per node
                self._tasks.append(asyncio.create_task(watcher.run(), name=f"cluster {inst.name}"))
            else:
                self.add_instance(inst)

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
        for callback in self.on_added:
            callback(poller)
        return poller

    async def remove_instance(self, name: str) -> None:
        """Stops polling an instance and closes its connections (a node left the cluster)."""
        task = self._poll_tasks.pop(name, None)
        if task is not None:
            await cancel_and_wait([task])
        for poller in [p for p in self.pollers if p.inst.name == name]:
            self.pollers.remove(poller)
            for callback in self.on_removed:
                callback(poller)
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

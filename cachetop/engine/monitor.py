"""The Monitor owns time: it polls every instance on its own schedule, probes latency between
polls, marks instances up or down, and publishes immutable Snapshots to subscribers.

Each instance has its own Poller (cachetop/engine/poller.py), so a dead or slow instance only ever
delays itself; the Monitor adds and removes them, and builds the Snapshots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from cachetop.backends import Backend, make_backend
from cachetop.engine.cluster import ClusterWatcher
from cachetop.engine.config import Config, InstanceConfig
from cachetop.engine.figures import FigureBoard, FigureContributor, Figures
from cachetop.engine.poller import MIN_INTERVAL, Poller
from cachetop.engine.source import SourceBase, SourceCapabilities
from cachetop.model import Snapshot
from cachetop.util.aio import Callbacks, cancel_and_wait

log = logging.getLogger("cachetop.monitor")  # the name users see in logs; stable across moves

MAX_CONCURRENT_POLLS = 64
# Work done between two yields to the event loop while starting, snapshotting or stopping a
# large fleet: a key press or a signal waits at most for one chunk (a few ms), never for the
# whole fleet (10,000 instances take seconds to start).
CHUNK = 200
# Closing connections at stop is bounded as a whole: a fleet of 10,000 closes them all at once,
# and what has not closed by then is left to the kernel (the process is ending).
CLOSE_DEADLINE_S = 0.5
FIRST_POLL_CHECK_S = 0.02  # how often the first publish looks for every instance's first answer


class Monitor(SourceBase):
    """Runs one Poller per instance and publishes a Snapshot every `settings.interval`: on time,
    whatever a slow instance does (its row keeps its last values, marked stale, until its timeout
    declares it down). The live Source (engine/source.py).

    Use as `async with Monitor(config) as mon:`; subscribers are plain callables run in the
    event loop with each Snapshot (keep them quick; hand heavy work to a task or thread).
    """

    capabilities = SourceCapabilities(pause=True, refresh=True, pace=True, act=True)

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        backend_factory: Callable[[InstanceConfig, float], Backend] = make_backend,
    ) -> None:
        super().__init__(interval=config.settings.interval, paused=True)  # start() runs it
        self.config = config
        self.clock, self.wall = clock, wall
        self.window_s = config.settings.window
        self._backend_factory = backend_factory
        self._before_snapshot: Callbacks[Callable[[], None]] = Callbacks()
        self._figures = FigureBoard()  # per-instance figures measured beside us (engine/figures.py)
        # Told of every poller added or removed after start (cluster nodes joining, leaving).
        self.on_added: Callbacks[Callable[[Poller], None]] = Callbacks()
        self.on_removed: Callbacks[Callable[[Poller], None]] = Callbacks()
        self._tasks: list[asyncio.Task[None]] = []
        self._poll_tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = PollSlots(MAX_CONCURRENT_POLLS)
        self.watchers: list[ClusterWatcher] = []  # one per cluster target
        self.pollers: list[Poller] = []
        self._publish_wake = asyncio.Event()
        self._publish_woken = "refresh"  # why _publish_wake was set: "refresh" or "interval"
        self._all_added = False  # every configured instance has its poller (start is done)

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._running.set()
        # Publishing starts first: 10,000 instances take seconds to add, and subscribers (the
        # dashboard) show those added so far meanwhile.
        self._tasks.append(asyncio.create_task(self._publish_loop(), name="publish"))
        try:
            await self._start_instances()
            self._all_added = True
        except BaseException:
            await self.stop()  # pollers already started must not outlive a failed start
            raise

    async def _start_instances(self) -> None:
        for n, inst in enumerate(self.config.instances, 1):
            if n % CHUNK == 0:
                await asyncio.sleep(0)  # let the screen draw and keys and signals through
            if inst.cluster:
                watcher = ClusterWatcher(self, inst, self.config.timeout_of(inst))
                self.watchers.append(watcher)
                self.add_figures(watcher)  # its masters' hot slots
                await watcher.start()  # discovers the nodes and adds one poller per node
                self._tasks.append(asyncio.create_task(watcher.run(), name=f"cluster {inst.name}"))
            else:
                self.add_instance(inst)

    def _make_backend(self, inst: InstanceConfig, timeout: float) -> Backend:
        if inst.target.mode == "sentinel":
            from cachetop.engine.sentinel import SentinelBackend

            return SentinelBackend(inst, timeout, self._backend_factory)
        return self._backend_factory(inst, timeout)

    def add_instance(self, inst: InstanceConfig, index: int | None = None) -> Poller:
        """Starts polling one more instance (cluster discovery adds nodes as they appear)."""
        timeout = self.config.timeout_of(inst)
        poller = Poller(
            inst,
            self._make_backend(inst, timeout),
            interval=self.interval_of(inst),
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

    # --- the Fleet (engine/fleet.py): what discovery may tell ---------------------------------

    def backend_of(self, name: str) -> Backend | None:
        """The backend polling `name`: where an action reports the traffic it sends there."""
        return next((p.backend for p in self.pollers if p.inst.name == name), None)

    def members(self, prefix: str) -> list[Poller]:
        return [p for p in self.pollers if p.inst.name.startswith(prefix)]

    def place(self, name: str, *, role: str | None, shard: str | None) -> None:
        for poller in self.pollers:
            if poller.inst.name == name:
                poller.role, poller.shard = role, shard

    def arrange(self, names: Sequence[str]) -> None:
        order = {name: n for n, name in enumerate(names)}
        mine = [p for p in self.pollers if p.inst.name in order]
        if not mine:
            return
        first = self.pollers.index(mine[0])
        others = [p for p in self.pollers if p.inst.name not in order]
        mine.sort(key=lambda p: order[p.inst.name])
        self.pollers[:] = others[:first] + mine + others[first:]

    async def stop(self) -> None:
        await cancel_within([*self._tasks, *self._poll_tasks.values()], CLOSE_DEADLINE_S)
        self._tasks.clear()
        self._poll_tasks.clear()
        await close_all(
            [w.close() for w in self.watchers] + [p.backend.close() for p in self.pollers], CLOSE_DEADLINE_S
        )

    async def pause_only(self) -> None:
        """Stops new polls and leaves the rest to a process that is about to end (run_dashboard
        on a large fleet): cheaper than stop(), which cancels and closes every poller."""
        self.pause()
        for task in self._tasks:
            task.cancel()

    async def __aenter__(self) -> Monitor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- subscribers --------------------------------------------------------------------------

    def before_snapshot(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Runs callback once before every snapshot is built (the hot-key collectors follow a
        sentinel's master there). Figures go through add_figures, not here."""
        return self._before_snapshot.add(callback)

    def add_figures(self, contributor: FigureContributor) -> Callable[[], None]:
        """Asks `contributor` for each instance's extra figures whenever a snapshot is built
        (cachetop/engine/figures.py); returns the call that unregisters it."""
        return self._figures.add(contributor)

    def _figures_of(self, poller: Poller) -> Figures:
        return self._figures.collect(poller.inst.name, _log_contributor_error)

    def _run_before_snapshot(self) -> None:
        for callback in self._before_snapshot:
            try:
                callback()
            except Exception:
                log.exception("a before-snapshot hook failed")

    def snapshot(self) -> Snapshot:
        self._run_before_snapshot()
        return Snapshot(
            time=self.wall(),
            window_s=self.window_s,
            instances=tuple(p.metrics(self._figures_of(p)) for p in self.pollers),
        )

    async def _snapshot_in_chunks(self) -> Snapshot:
        """snapshot(), yielding to the loop every CHUNK instances (10,000 take ~0.3 s)."""
        self._run_before_snapshot()
        when = self.wall()
        pollers = list(self.pollers)
        instances = []
        for start in range(0, len(pollers), CHUNK):
            if start:
                await asyncio.sleep(0)
            instances += [p.metrics(self._figures_of(p)) for p in pollers[start : start + CHUNK]]
        return Snapshot(time=when, window_s=self.window_s, instances=tuple(instances))

    async def publish(self) -> Snapshot:
        snap = await self._snapshot_in_chunks()
        await self.deliver(snap)
        return snap

    async def _publish_loop(self) -> None:
        # The first Snapshot goes out as soon as every instance has answered its first poll (or
        # failed it), not one interval later: status, memory and connections are known from one
        # poll, and the rates follow with the next. A screen shows data ~1 interval sooner.
        await self._first_polls()
        await self._running.wait()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.publish()
        # Fixed deadlines (the last one plus an interval), not an interval after each publish:
        # building a snapshot and awaiting its subscribers must not stretch every gap.
        due = started + self.interval
        while True:
            woken = await self._wait_publish(due)
            if woken == "interval":  # +/-: the next snapshot comes the new interval after the last
                due = started + self.interval
                continue
            if self.paused:
                await self._running.wait()
                woken = "resumed"
            started = loop.time()
            await self.publish()
            if woken != "due":  # refresh_now or resume: the schedule starts again from here
                due = started + self.interval
                continue
            due += self.interval
            late = loop.time() - due
            if late > 0:  # a publish that overran a whole interval: skip ahead, never burst
                due += math.ceil(late / self.interval) * self.interval

    async def _wait_publish(self, due: float) -> str:
        """Until `due` ("due"), refresh_now ("refresh") or set_interval ("interval")."""
        timeout = due - asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(self._publish_wake.wait(), max(0.0, timeout))
        except TimeoutError:
            return "due"
        self._publish_wake.clear()
        woken, self._publish_woken = self._publish_woken, "refresh"
        return woken

    async def _first_polls(self) -> None:
        """Returns once every poller has polled once, or after one interval at most (a slow or
        large fleet publishes what it has, as before). Checks every FIRST_POLL_CHECK_S."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.interval
        while loop.time() < deadline:
            if self._all_added and all(p.polls for p in self.pollers):
                return
            await asyncio.sleep(FIRST_POLL_CHECK_S)

    async def wait_polls(self, count: int, timeout: float = 30.0) -> None:
        """Waits until every instance has been polled at least `count` times."""

        async def wait() -> None:
            for poller in self.pollers:
                while poller.polls < count:
                    poller.polled.clear()
                    await poller.polled.wait()

        await asyncio.wait_for(wait(), timeout)

    # --- controls (TUI keys) ------------------------------------------------------------------

    def refresh_now(self) -> None:
        for poller in self.pollers:
            poller.wake_up()
        self._publish_woken = "refresh"
        self._publish_wake.set()

    def set_interval(self, seconds: float) -> None:
        """The dashboard's +/-: `seconds` becomes the default interval, and every instance's
        interval scales by the same factor, so per-instance intervals keep their ratio to it (one
        polled every 5s beside a 1s default is polled every 10s at 2s, and every 5s again at 1s).
        The window grows to the new default interval when shorter (a window holds a poll)."""
        self._interval = max(MIN_INTERVAL, seconds)
        for poller in self.pollers:
            poller.set_interval(self.interval_of(poller.inst))
        if self.window_s < self._interval:
            self.set_window(self._interval)
        if not self._publish_wake.is_set():  # a refresh already asked for wins
            self._publish_woken = "interval"
            self._publish_wake.set()

    def interval_of(self, inst: InstanceConfig) -> float:
        """An instance's interval now: its configured one (or the default), times the factor
        by which +/- changed the default."""
        default = self.config.settings.interval
        configured = default if inst.interval is None else inst.interval
        return max(MIN_INTERVAL, configured * self._interval / default)

    def set_window(self, seconds: float) -> None:
        self.window_s = seconds
        for poller in self.pollers:
            poller.set_window(seconds)


def _log_contributor_error(contributor: FigureContributor) -> None:
    log.exception("figures from %s failed", type(contributor).__name__)


class PollSlots:
    """At most `n` polls at once, first come first served: asyncio.Semaphore, less its cost on
    cancellation (it removes a cancelled waiter from its queue, O(queue): stopping 10,000 pollers
    queued for 64 slots took seconds). A cancelled waiter stays queued and is skipped."""

    def __init__(self, n: int) -> None:
        self._free = n
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot just as we were cancelled: pass it on
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


async def cancel_within(tasks: list[asyncio.Task[None]], deadline_s: float) -> set[asyncio.Task[None]]:
    """Cancels tasks and waits for them at most `deadline_s` (10,000 pollers take ~1 s to unwind;
    a quit must not wait that long); returns those still running. Cancelled again every 0.1 s:
    a cancel can be swallowed (see aio.cancel_and_wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(0.1, remaining))
    return pending


async def close_all(closes: list[Coroutine[Any, Any, object]], deadline_s: float) -> None:
    """Runs every close at once and waits for them at most `deadline_s` in all: one by one, a
    fleet of 10,000 took minutes to quit. Stragglers are cancelled; errors are ignored."""
    tasks = [asyncio.ensure_future(close) for close in closes]
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=deadline_s)
    for task in pending:
        task.cancel()
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a failed close is not worth a warning at exit

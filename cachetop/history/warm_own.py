"""A scheduled warm's commands, counted as cachetop's own traffic of the instance it warms.

The daemon's (and the dashboard's) warm-ahead sends about four commands per key (SET NX for the
lock, MEMORY USAGE, SET, DEL) from a worker thread on a connection of its own. Without this, an
idle server would read as busy across every warm: each command it sends is reported to the
poller's backend (backends/own_traffic.py, through AcceptsOwnSources), and each round trip runs
while holding the backend's own-traffic gate shared (util/aio.py OwnTrafficGate), as the hot-key
sampler's commands do, so no command of the warm is in flight while a poll's INFO runs and the
counts INFO is matched against are exact.

The gate is an asyncio object of the event loop that polls; the warm runs in a thread, so each
hold is a small task on that loop that enters the gate and keeps it until the thread is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from cachetop.backends.capabilities import AcceptsOwnSources, HasOwnGate
from cachetop.util.aio import OwnTrafficGate

SOURCE = "warm-ahead"
ENTER_CHECK_S = 0.1  # how often a hold not entered yet checks that the loop still runs


class WarmTraffic:
    """Commands every warm on one backend sent, cumulative (a total that went down would look
    like a server restart), and the connections the warms hold open now. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: Counter[str] = Counter()
        self._open = 0

    def count(self, command: str, n: int = 1) -> None:
        with self._lock:
            self._sent[command] += n

    def opened(self, n: int) -> None:
        with self._lock:
            self._open += n

    def commands(self) -> dict[str, int]:
        with self._lock:
            return dict(self._sent)

    def connections(self) -> int:
        with self._lock:
            return self._open


_TOTALS: weakref.WeakKeyDictionary[Any, WarmTraffic] = weakref.WeakKeyDictionary()


class WarmOwnReport:
    """What RedisWarmer reports to (actions/warm.py OwnReport): counts into the backend's
    WarmTraffic while holding its gate, from the warm's thread."""

    def __init__(
        self, traffic: WarmTraffic, gate: OwnTrafficGate | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.traffic = traffic
        self.gate = gate
        self.loop = loop
        self._gate_gone = False  # the loop stopped answering: later holds do not wait for it

    @contextlib.contextmanager
    def sending(self) -> Iterator[Callable[[str, int], None]]:
        """Holds the gate shared while the caller sends and reads one round trip, and counts
        what it sends (at any moment inside: no poll's INFO can run until the hold ends)."""
        with self._held():
            yield self.traffic.count

    def opened(self, n: int) -> None:
        self.traffic.opened(n)

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        if self.gate is None or self._gate_gone or self.loop.is_closed():
            yield
            return
        gate = self.gate
        entered = threading.Event()
        release: list[asyncio.Event] = []

        async def hold() -> None:
            done = asyncio.Event()
            async with gate.shared():
                release.append(done)
                entered.set()
                await done.wait()

        try:
            future = asyncio.run_coroutine_threadsafe(hold(), self.loop)
        except RuntimeError:  # the loop closed meanwhile
            self._gate_gone = True
            yield
            return
        # No deadline while the loop runs: a poll holds the gate for one INFO round trip at most,
        # and a busy loop is late, not gone (going on without the gate would race the INFO).
        # A loop that stopped never runs the hold: the warm goes on without it.
        while not entered.wait(ENTER_CHECK_S):
            if self.loop.is_closed() or not self.loop.is_running():
                self._gate_gone = True
                future.cancel()
                yield
                return
        try:
            yield
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing left to release
                self.loop.call_soon_threadsafe(release[0].set)


def own_report(backend: object | None, loop: asyncio.AbstractEventLoop) -> WarmOwnReport | None:
    """The report for the poller's backend of the warmed instance (registered with it on first
    use), or None when no poller watches it or its backend takes no reports."""
    if backend is None or not isinstance(backend, AcceptsOwnSources):
        return None
    traffic = _TOTALS.get(backend)
    if traffic is None:
        traffic = _TOTALS[backend] = WarmTraffic()
        backend.add_own_source(SOURCE, traffic.commands, connections=traffic.connections)
    gate = backend.own_gate if isinstance(backend, HasOwnGate) else None
    return WarmOwnReport(traffic, gate, loop)

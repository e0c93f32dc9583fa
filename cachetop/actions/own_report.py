"""An action run in a thread beside a poller (a warm, an evict), counted as cachetop's own traffic.

The daemon's and the dashboard's actions run in a worker thread, on connections of their own.
Without this, an idle server would read as busy across every warm or evict: each command an
action sends is reported to the poller's backend of the instance (backends/own_traffic.py,
through AcceptsOwnSources) under a source name of its own ("warm-ahead", "evict"), with the
keyspace hits and misses its reads cause, and each round trip runs while holding the backend's
own-traffic gate shared (util/aio.py OwnTrafficGate), as the hot-key sampler's commands do, so
no command of the action is in flight while a poll's INFO runs and the counts INFO is matched
against are exact.

The gate is an asyncio object of the event loop that polls; the action runs in a thread, so each
hold is a small task on that loop that enters the gate and keeps it until the thread is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from cachetop.backends.capabilities import AcceptsOwnSources, HasOwnGate
from cachetop.backends.redis_client import command_name
from cachetop.util.aio import OwnTrafficGate

ENTER_CHECK_S = 0.1  # how often a hold not entered yet checks that the loop still runs


class SentTraffic:
    """Commands every run of one action on one backend sent and the keyspace hits/misses they
    caused, cumulative (a total that went down would look like a server restart), and the
    connections the runs hold open now. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: Counter[str] = Counter()
        self._hits = 0
        self._misses = 0
        self._open = 0

    def count(self, command: str, n: int = 1) -> None:
        with self._lock:
            self._sent[command] += n

    def read(self, hits: int, misses: int) -> None:
        with self._lock:
            self._hits += hits
            self._misses += misses

    def opened(self, n: int) -> None:
        with self._lock:
            self._open += n

    def commands(self) -> dict[str, int]:
        with self._lock:
            return dict(self._sent)

    def hits(self) -> int:
        with self._lock:
            return self._hits

    def misses(self) -> int:
        with self._lock:
            return self._misses

    def connections(self) -> int:
        with self._lock:
            return self._open


_TOTALS: weakref.WeakKeyDictionary[Any, dict[str, SentTraffic]] = weakref.WeakKeyDictionary()


class ThreadOwnReport:
    """What an action reports (ActionOwnReport: actions/warm.py, actions/evict.py): counts into the
    backend's SentTraffic while holding its gate, from the action's thread."""

    def __init__(
        self, traffic: SentTraffic, gate: OwnTrafficGate | None, loop: asyncio.AbstractEventLoop
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

    def read(self, hits: int, misses: int) -> None:
        """Keyspace hits/misses the round trip in progress caused (call it inside sending())."""
        self.traffic.read(hits, misses)

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
        # A loop that stopped never runs the hold, and a hold cancelled before it entered (the
        # loop shutting down) never will: the action goes on without it.
        while not entered.wait(ENTER_CHECK_S):
            if future.done() or self.loop.is_closed() or not self.loop.is_running():
                self._gate_gone = True
                future.cancel()
                yield
                return
        try:
            yield
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing left to release
                self.loop.call_soon_threadsafe(release[0].set)


# Own-traffic sources of the actions run beside a poller:
# an evict run by the dashboard, or by the daemon for an attached viewer (its handshakes, ROLE,
# INFO, SCAN, MEMORY USAGE, OBJECT IDLETIME with the keyspace hits and misses it causes, UNLINK),
EVICT = "evict"
# and a scheduled warm-ahead (about four commands a key: SET NX for the lock, MEMORY USAGE, SET, DEL).
WARM_AHEAD = "warm-ahead"


def thread_own_report(
    backend: object | None, loop: asyncio.AbstractEventLoop, source: str
) -> ThreadOwnReport | None:
    """The report for the poller's backend of the instance an action works on (its traffic
    registered with the backend under `source` on first use), or None when no poller watches
    the instance or its backend takes no reports."""
    if backend is None or not isinstance(backend, AcceptsOwnSources):
        return None
    by_source = _TOTALS.setdefault(backend, {})
    traffic = by_source.get(source)
    if traffic is None:
        traffic = by_source[source] = SentTraffic()
        backend.add_own_source(
            source,
            traffic.commands,
            hits=traffic.hits,
            misses=traffic.misses,
            connections=traffic.connections,
        )
    gate = backend.own_gate if isinstance(backend, HasOwnGate) else None
    return ThreadOwnReport(traffic, gate, loop)


class ActionOwnReport(Protocol):
    """Where an action run beside a poller reports what it sends (ThreadOwnReport), or nothing
    (NOT_REPORTED: `cachetop evict` and `cachetop warm`, with no poller in their process)."""

    def sending(self) -> AbstractContextManager[Callable[[str, int], None]]: ...

    def read(self, hits: int, misses: int) -> None: ...

    def opened(self, n: int) -> None: ...


class _NotReported:
    def sending(self) -> AbstractContextManager[Callable[[str, int], None]]:
        return contextlib.nullcontext(lambda _command, _n: None)

    def read(self, hits: int, misses: int) -> None:
        pass

    def opened(self, n: int) -> None:
        pass


NOT_REPORTED: ActionOwnReport = _NotReported()


def count_pipeline(pipe: Any, count: Callable[[str, int], None]) -> None:
    """Counts the commands queued on a redis-py pipeline, as commandstats names them."""
    for command, n in Counter(command_name(args) for args, _options in pipe.command_stack).items():
        count(command, n)

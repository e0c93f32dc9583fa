"""The dashboard's evicts of idle keys, counted as cachetop's own traffic.

`OBJECT IDLETIME` is a key lookup that Redis counts as a keyspace hit (a miss for a key gone), and an
idle evict sends one per key it checks, dry run included: without this, a dry run over a million
keys would show as a million hits in the hit ratio the dashboard reports. Each evictor's running
counts (RedisEvictor.idle_reads, updated per batch from its worker thread) are added up per backend
and reported through the backend's own-source hook, as the hot-key sampler's and the keyspace
analysis's are, so polls take them out the moment they are sent.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from cachetop.actions.evict_idle import IdleReads

COMMAND = "object|idletime"


class IdleReadTotals:
    """Cumulative IDLETIME calls, hits and misses of every idle evict on one backend."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = IdleReads()
        self._running: list[IdleReads] = []

    def _all(self) -> list[IdleReads]:
        with self._lock:
            return [self._done, *self._running]

    def commands(self) -> dict[str, int]:
        return {COMMAND: sum(r.sent for r in self._all())}

    def hits(self) -> int:
        return sum(r.hits for r in self._all())

    def misses(self) -> int:
        return sum(r.misses for r in self._all())

    @contextlib.contextmanager
    def tracking(self, reads: IdleReads) -> Iterator[None]:
        with self._lock:
            self._running.append(reads)
        try:
            yield
        finally:
            with self._lock:
                self._running.remove(reads)
                self._done.sent += reads.sent
                self._done.hits += reads.hits
                self._done.misses += reads.misses


_TOTALS: weakref.WeakKeyDictionary[Any, IdleReadTotals] = weakref.WeakKeyDictionary()


def idle_read_totals(app: Any, instance: str) -> IdleReadTotals | None:
    """The totals for the instance's live backend (registered on first use), or None without one."""
    pollers = app.live_pollers() if hasattr(app, "live_pollers") else ()
    poller = next((p for p in pollers if p.inst.name == instance), None)
    backend = getattr(poller, "backend", None)
    if backend is None or not hasattr(backend, "add_own_source"):
        return None
    totals = _TOTALS.get(backend)
    if totals is None:
        totals = _TOTALS[backend] = IdleReadTotals()
        backend.add_own_source("evict-idle", totals.commands, hits=totals.hits, misses=totals.misses)
    return totals


@contextlib.contextmanager
def counted(app: Any, instance: str, reads: IdleReads) -> Iterator[None]:
    """While an evictor runs: its IDLETIME reads count as own traffic of the instance's backend."""
    totals = idle_read_totals(app, instance) if app is not None else None
    if totals is None:
        yield
        return
    with totals.tracking(reads):
        yield

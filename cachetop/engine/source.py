"""The Source protocol: anything that publishes Snapshots.

The live Monitor (engine/monitor.py), a recording being replayed (exporters/replay.py) and, next,
a daemon attached over HTTP or a Prometheus server are Sources. The dashboard, the alert service
and the exporters depend on this protocol only, never on a concrete class.

A Source declares what it can do in `capabilities` (SourceCapabilities): a consumer offers pause,
refresh, step, seek, a change of pace or an action only where the source says it can. Every
Source still has the methods of the protocol; one that cannot do something ignores the call.

SourceBase holds what every Source shares (subscribers, the paused state, `latest`, waiting for
a snapshot), so a new Source only says where its Snapshots come from and when:

    class AttachedSource(SourceBase):
        capabilities = SourceCapabilities(pause=True, refresh=True)
        async def start(self) -> None: ...   # fetch in a task, then `await self.deliver(snap)`
        async def stop(self) -> None: ...
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from cachetop.engine.poller import Poller
from cachetop.model import Snapshot
from cachetop.util.aio import Callbacks

log = logging.getLogger("cachetop.source")

Subscriber = Callable[[Snapshot], Any]  # may return an awaitable, awaited before the next one


@dataclass(frozen=True, slots=True)
class SourceCapabilities:
    """What a Source can do beyond publishing. A consumer asks here, never with hasattr."""

    pause: bool = False  # pause() stops publishing until resume()
    refresh: bool = False  # refresh_now() fetches new data now (a live source)
    pace: bool = False  # set_interval() changes how often it publishes
    step: bool = False  # step(frames): show the frame `frames` away (a Timeline)
    seek: bool = False  # seek(index=, time=): show a given frame (a Timeline)
    act: bool = False  # live servers behind it: actions (evict, warm) and detail fetches reach them


@runtime_checkable
class Source(Protocol):
    """Publishes Snapshots to subscribers, in the running asyncio loop."""

    capabilities: SourceCapabilities

    @property
    def latest(self) -> Snapshot | None:
        """The Snapshot published last (None before the first)."""

    @property
    def interval(self) -> float:
        """Seconds between two Snapshots: the one owner of the pace a screen shows."""

    @property
    def paused(self) -> bool: ...

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Calls callback with every Snapshot published from now on; returns the unsubscribe."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def refresh_now(self) -> None: ...

    def set_interval(self, seconds: float) -> None: ...


@runtime_checkable
class Timeline(Source, Protocol):
    """A Source over frames that already exist (a recording): it can step and seek."""

    @property
    def position(self) -> int:
        """Index of the frame shown, -1 before the first."""

    @property
    def frame_count(self) -> int: ...

    def step(self, frames: int = 1) -> Snapshot: ...

    def seek(self, *, index: int | None = None, time: float | None = None) -> Snapshot: ...


@runtime_checkable
class PolledSource(Source, Protocol):
    """A Source with live pollers behind it (the Monitor): a screen that fetches more about one
    instance (slowlog, clients) or asks for per-command figures reaches its poller here."""

    @property
    def pollers(self) -> Sequence[Poller]: ...


def live_pollers(source: Source | None) -> Sequence[Poller]:
    """The pollers behind a source that acts on live servers; none for a replay or fixed data."""
    if isinstance(source, PolledSource) and source.capabilities.act:
        return source.pollers
    return ()


class SourceBase:
    """Subscribers, pause/resume and `latest`, shared by every Source (subclass it)."""

    capabilities = SourceCapabilities()

    def __init__(self, *, interval: float = 1.0, paused: bool = False) -> None:
        self._interval = interval
        self._subscribers: Callbacks[Subscriber] = Callbacks()
        self._latest: Snapshot | None = None
        self._running = asyncio.Event()  # cleared while paused
        if not paused:
            self._running.set()
        self._published = asyncio.Condition()
        self._pending: set[asyncio.Future[Any]] = set()  # deliver_now's tasks, until they end

    # --- the protocol ------------------------------------------------------------------------------

    @property
    def latest(self) -> Snapshot | None:
        return self._latest

    @latest.setter
    def latest(self, snap: Snapshot | None) -> None:
        self._latest = snap

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        return self._subscribers.add(callback)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def refresh_now(self) -> None:
        pass

    def set_interval(self, seconds: float) -> None:
        self._interval = seconds

    async def __aenter__(self) -> SourceBase:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- for subclasses and consumers -------------------------------------------------------------

    async def deliver(self, snap: Snapshot) -> None:
        """Makes snap the latest and hands it to every subscriber, awaiting those that return an
        awaitable; a failing subscriber is logged and the others still get the Snapshot."""
        self._latest = snap
        for callback in self._subscribers:
            try:
                result = callback(snap)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("a snapshot subscriber failed")
        async with self._published:
            self._published.notify_all()

    def deliver_now(self, snap: Snapshot) -> None:
        """deliver() from synchronous code (a replay's step): an awaitable a subscriber returns
        runs as a task of its own."""
        self._latest = snap
        for callback in self._subscribers:
            try:
                result = callback(snap)
                if asyncio.iscoroutine(result):
                    self._keep(asyncio.ensure_future(result))
            except Exception:
                log.exception("a snapshot subscriber failed")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop, so nobody waits in wait_snapshot
        self._keep(asyncio.ensure_future(self._notify_waiters()))

    def _keep(self, task: asyncio.Future[Any]) -> None:
        """Holds a reference until the task ends (the loop keeps only weak ones)."""
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _notify_waiters(self) -> None:
        async with self._published:
            self._published.notify_all()

    async def wait_running(self) -> None:
        """Returns at once, or when resumed."""
        await self._running.wait()

    async def wait_snapshot(
        self, predicate: Callable[[Snapshot], bool] = lambda s: True, timeout: float = 30.0
    ) -> Snapshot:
        """The next published Snapshot for which predicate holds; TimeoutError at the deadline."""

        async def wait() -> Snapshot:
            async with self._published:
                while True:
                    await self._published.wait()
                    if self._latest is not None and predicate(self._latest):
                        return self._latest

        return await asyncio.wait_for(wait(), timeout)


NO_CAPABILITIES = SourceCapabilities()


def capabilities_of(source: Source | None) -> SourceCapabilities:
    """A source's declared capabilities; none for no source (fixed data in tests and screenshots)."""
    return NO_CAPABILITIES if source is None else source.capabilities

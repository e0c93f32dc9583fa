"""asyncio helpers the whole core shares."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]], grace_s: float = 0.5) -> None:
    """Cancels tasks and waits until each has really ended.

    On Python 3.11, asyncio.wait_for() can swallow a cancellation that arrives just as its inner
    awaitable completes, so a single cancel() may leave a busy loop running for ever. We keep
    cancelling until the task is done; each round waits at most `grace_s`.
    """
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=grace_s)


class Callbacks(Generic[F]):
    """A list of callbacks to which adding returns the way to remove (Monitor.subscribe...)."""

    def __init__(self) -> None:
        self._items: list[F] = []

    def add(self, callback: F) -> Callable[[], None]:
        self._items.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._items.remove(callback)

        return remove

    def __iter__(self) -> Iterator[F]:
        return iter(list(self._items))  # a copy: a callback may remove itself while we iterate


class OwnTrafficGate:
    """Keeps cachetop's side commands out of the way of a poll's INFO.

    The poll holds the gate exclusively from the moment it reads cachetop's running counts until
    INFO's reply is in; every side command (hot-key sampler, LFU and big-key scans) holds it shared
    from the moment it is counted until its reply is in. So no command of ours is in flight while
    INFO runs, and the counts INFO is matched against are exact: two sockets give no order on
    the server, and a command counted but not yet processed (or the reverse) would show as traffic.
    """

    def __init__(self) -> None:
        self._shared = 0
        self._exclusive = False
        self._exclusive_lock = asyncio.Lock()
        self._no_exclusive = asyncio.Event()
        self._no_exclusive.set()
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def shared(self) -> Any:
        while self._exclusive:
            await self._no_exclusive.wait()
        self._shared += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._shared -= 1
            if self._shared == 0:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def exclusive(self, max_wait: float | None = None) -> Any:
        """Blocks new side commands, and waits for those in flight: at most `max_wait` seconds,
        after which the poll goes on (a stuck side command must not fail the poll)."""
        async with self._exclusive_lock:
            self._exclusive = True
            self._no_exclusive.clear()
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max_wait):
                        while self._shared:
                            await self._idle.wait()
                yield
            finally:
                self._exclusive = False
                self._no_exclusive.set()

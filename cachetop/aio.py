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

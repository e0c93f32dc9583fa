"""asyncio helpers the whole core shares."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


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

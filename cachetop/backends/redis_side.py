"""The Redis poll connection lent to a hot-key sampler as its side connection (PollConnectionSide)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cachetop.backends.redis import RedisBackend


class PollConnectionSide:
    """The poll connection as a hot-key sampler's side connection (hotkeys/conn.py SideCommands):
    a MONITOR phase then holds one connection more than the poll and the probe, not two.

    Each call is one run_own round trip: counted as ours, named with its count (other cachetop
    processes leave it out) and serialised with the polls by the own-traffic gate, so a poll
    waits at most for one call in flight, and a call for at most one poll."""

    connections = 0  # the poll connection is the poller's

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend

    async def call(self, *args: str | int) -> Any:
        (reply,) = await self._backend.run_own(tuple(str(a) for a in args))
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def rest(self) -> None:
        pass

    async def close(self) -> None:
        pass

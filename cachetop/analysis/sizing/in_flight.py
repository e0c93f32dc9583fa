"""Misses whose fill is not in yet: cache-aside with GETs of one key in flight together.

A client that pipelines, or runs requests concurrently, can read a key again before its fill of
that key's miss (the SET after the GET) has reached the server: that read misses too, and the
cache is left as it was. How long a miss stays in flight is measured from the stream itself
(shards.SampledTrace.fill_s: the mean time from a read the server missed to the client's fill),
and applied to the misses of the simulated cache, whatever the server did: a smaller cache
misses keys the server hit, and their repeated reads miss with them.

(Marking reads in the trace instead, "within 0.1 s of the last read with no write between", also
marked reads after a hit, and a simulated cache that evicted a hot key missed it at every later
read, as its reads never paused: the Redis curve at half the memory read 12-23 points low.)
"""

from __future__ import annotations


class InFlight:
    def __init__(self, fill_s: float = 0.0) -> None:
        self.fill_s = fill_s
        self._until: dict[int, float] = {}  # key -> when the fill of its miss reaches the server

    def missing(self, key: int, at: float) -> bool:
        """True when a read of `key` at `at` misses because the fill of its last miss is not in."""
        until = self._until.get(key)
        if until is None:
            return False
        if at < until:
            return True
        del self._until[key]
        return False

    def missed(self, key: int, at: float) -> None:
        """The simulated cache missed `key` at `at`: its fill is in flight for fill_s."""
        if self.fill_s > 0.0:
            self._until[key] = at + self.fill_s

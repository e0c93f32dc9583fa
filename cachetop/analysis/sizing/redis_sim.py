"""Redis's own eviction, simulated: approximated LRU and LFU by sampling (evict.c).

Redis does not keep an LRU list. When memory is over the limit it takes `maxmemory-samples` keys
at random, puts them into an eviction pool of 16 kept sorted by "idle" (for LRU, seconds since the
last access on a clock of 1 s resolution; for LFU, 255 minus the decayed 8-bit log counter), and
evicts the pool's best candidate that still exists. The pool survives between evictions and its
idle values are not refreshed, so a candidate touched after it was pooled can still go. That
differs from textbook LRU, and more so when the cache turns over within a few seconds (many keys
share one LRU second), which is why the curve for a Redis policy comes from this model and not
from libCacheSim's exact LRU.

The simulated cache holds unit-size objects (memory.py maps bytes to objects); it runs on a
spatially sampled trace (shards.py) with the capacity scaled by the sample rate, which keeps the
key population and its idle-time distribution the same in proportion, so random sampling of
candidates behaves as on the full key space.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from collections.abc import Sequence

from cachetop.analysis.sizing.in_flight import InFlight

POOL_SIZE = 16
LFU_INIT_VAL = 5


class RedisSampledCache:
    """One cache of `capacity` objects evicting like Redis with allkeys-lru or allkeys-lfu."""

    def __init__(
        self,
        capacity: int,
        *,
        lfu: bool = False,
        samples: int = 5,
        log_factor: int = 10,
        decay_minutes: int = 1,
        seed: int = 0,
        fill_s: float = 0.0,
    ) -> None:
        self.capacity = max(1, capacity)
        self.in_flight = InFlight(fill_s)
        self.lfu = lfu
        self.samples = max(1, samples)
        self.log_factor = log_factor
        self.decay_minutes = decay_minutes
        self.rng = random.Random(seed)
        self.keys: list[int] = []  # for O(1) random picks
        self.slot: dict[int, int] = {}  # key -> index in keys
        self.stamp: dict[int, int] = {}  # LRU: last access second; LFU: counter
        self.decr_at: dict[int, int] = {}  # LFU: minute of the last decay
        self.pool: list[tuple[int, int, int]] = []  # (idle, -entry number, key), ascending
        self.seq = 0  # entries pooled so far
        self.hits = 0
        self.misses = 0

    def access(self, key: int, at: float) -> bool:
        """A read at time `at` (seconds). On a miss the client stores the key (cache-aside); a read
        while that fill is in flight misses too and leaves the cache as it was (in_flight.py)."""
        if self.in_flight.missing(key, at):
            self.misses += 1
            return False
        if key in self.slot:
            self.hits += 1
            if self.lfu:
                self._lfu_touch(key, at)
            else:
                self.stamp[key] = int(at)
            return True
        self.misses += 1
        self.in_flight.missed(key, at)
        self._insert(key, at)
        while len(self.keys) > self.capacity:
            self._evict(at)
        return False

    def _insert(self, key: int, at: float) -> None:
        self.slot[key] = len(self.keys)
        self.keys.append(key)
        if self.lfu:
            self.stamp[key] = LFU_INIT_VAL
            self.decr_at[key] = int(at // 60)
        else:
            self.stamp[key] = int(at)

    def _remove(self, key: int) -> None:
        i = self.slot.pop(key)
        last = self.keys.pop()
        if last != key:
            self.keys[i] = last
            self.slot[last] = i
        del self.stamp[key]
        self.decr_at.pop(key, None)

    def _decayed(self, key: int, at: float) -> int:
        counter = self.stamp[key]
        periods = (int(at // 60) - self.decr_at[key]) // self.decay_minutes if self.decay_minutes else 0
        return max(0, counter - periods) if periods > 0 else counter

    def _lfu_touch(self, key: int, at: float) -> None:
        counter = self._decayed(key, at)
        if counter < 255:
            base = max(0, counter - LFU_INIT_VAL)
            if self.rng.random() < 1.0 / (base * self.log_factor + 1):
                counter += 1
        self.stamp[key] = counter
        self.decr_at[key] = int(at // 60)

    def _idle(self, key: int, at: float) -> int:
        if self.lfu:
            return 255 - self._decayed(key, at)
        return int(at) - self.stamp[key]

    def _populate(self, at: float) -> None:
        keys = self.keys
        n = len(keys)
        pool = self.pool
        if n > 2 * self.samples:
            # Distinct keys, as dictGetSomeKeys returns: draw, and redraw the rare repeat.
            rand = self.rng.random
            picked: set[int] = set()
            while len(picked) < self.samples:
                picked.add(int(rand() * n))
        else:  # a cache barely larger than the sample: all of it, or a plain sample
            picked = set(self.rng.sample(range(n), min(self.samples, n)))
        lfu = self.lfu
        now = int(at)
        stamp = self.stamp
        for i in picked:
            key = keys[i]
            idle = 255 - self._decayed(key, at) if lfu else now - stamp[key]
            if len(pool) >= POOL_SIZE:
                if idle <= pool[0][0]:
                    continue  # worse than the worst pooled candidate: the pool is full
                pool.pop(0)
            # Among equal idle values a newer entry goes left of the older ones, as in
            # evictionPoolPopulate, so the oldest (the stalest) is evicted first: with a 1-second
            # clock and a cache that turns over in less, most candidates tie. A key already pooled
            # is pooled again (Redis does not look), and its older entry becomes a ghost.
            self.seq += 1
            bisect.insort(pool, (idle, -self.seq, key))

    def _evict(self, at: float) -> None:
        while True:
            self._populate(at)
            while self.pool:
                key = self.pool.pop()[2]
                if key in self.slot:  # else a ghost: evicted through another entry
                    self._remove(key)
                    return


def simulate_redis(
    ids: Sequence[int],
    times: Sequence[float],
    capacities: Sequence[int],
    *,
    lfu: bool = False,
    samples: int = 5,
    log_factor: int = 10,
    decay_minutes: int = 1,
    seed: int = 0,
    warm: int = 0,
    fill_s: float = 0.0,
) -> list[tuple[Counter[int], bool]]:
    """(misses after the first `warm` reads by key, whether the cache was full by then) for each
    capacity (in objects), with Redis's sampled eviction."""
    out = []
    for capacity in capacities:
        cache = RedisSampledCache(
            capacity,
            lfu=lfu,
            samples=samples,
            log_factor=log_factor,
            decay_minutes=decay_minutes,
            seed=seed,
            fill_s=fill_s,
        )
        access = cache.access
        for key, at in zip(ids[:warm], times[:warm], strict=True):
            access(key, at)
        filled = len(cache.keys) >= 0.95 * cache.capacity
        by_key: Counter[int] = Counter()
        for key, at in zip(ids[warm:], times[warm:], strict=True):
            if not access(key, at):
                by_key[key] += 1
        out.append((by_key, filled))
    return out

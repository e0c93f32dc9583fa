"""memcached 1.6's segmented LRU, simulated (items.c: do_item_get, do_item_bump, lru_pull_tail,
lru_maintainer_juggle), for one slab class of unit-size items.

New items enter HOT. A fetch sets FETCHED the first time and ACTIVE the next (an item needs two
hits before it counts as active; once FETCHED, one hit); an ACTIVE item in COLD is bumped to
the head of WARM at once (the bump queue), elsewhere only its time is updated. The LRU
maintainer keeps HOT under 20% and WARM under 40% of the class's memory, pulling from their
tails: an ACTIVE tail goes to WARM (relinked at WARM's head when in WARM), any other to COLD;
it also moves tails older than hot_max_factor (0.2) / warm_max_factor (2.0) times COLD's age, on
the server's clock of whole seconds (`ages=True` here; off by default, see below). A store that
finds memory full evicts COLD's tail. Positions never move on a hit otherwise: HOT and COLD are
FIFOs with a second chance, WARM is a CLOCK.

That keeps more hits than a textbook LRU or libCacheSim's SLRU: a key read twice before it
leaves HOT or COLD lives on in WARM, and a key read once is evicted without pushing out the
others. The maintainer is taken to keep up (it runs every millisecond or so under load); its
lag is not modelled.

The age rules are left out by default. On the whole acceptance trace (no sampling; Zipf 0.9,
300,000 keys, 1.5 million reads) they lower the hit ratio by 0.3-0.5 point when the server
serves 150,000 reads/s and by 0.1 at 1,000,000/s, where COLD's age is 0-1 s (2-4 points at
20,000/s: a slowly turning cache reads high without them); but they do not
survive spatial sampling: the rules are applied whenever the maintainer looks, and a sample
looks only at its own reads (a 5% sample read 2 points lower than the whole trace at 20 MiB, a
1% sample 3), while the rules without ages agree with the whole trace within 0.6 point at 5%.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence

from cachetop.analysis.sizing.in_flight import InFlight

HOT_PCT = 0.20  # settings.hot_lru_pct
WARM_PCT = 0.40  # settings.warm_lru_pct
HOT_MAX_FACTOR = 0.2
WARM_MAX_FACTOR = 2.0
HOT, WARM, COLD = 0, 1, 2
FETCHED, ACTIVE = 1, 2


class MemcachedSegmentedLRU:
    def __init__(self, capacity: int, *, ages: bool = False, fill_s: float = 0.0) -> None:
        self.capacity = max(1, capacity)
        self.ages = ages
        self.hot_limit = self.capacity * HOT_PCT
        self.warm_limit = self.capacity * WARM_PCT
        self.lrus: tuple[OrderedDict[int, None], ...] = (OrderedDict(), OrderedDict(), OrderedDict())
        self.where: dict[int, int] = {}
        self.flags: dict[int, int] = {}
        self.time: dict[int, int] = {}  # last access second (it->time)
        self.in_flight = InFlight(fill_s)

    def access(self, key: int, at: float) -> bool:
        """A read at `at` seconds; a miss is stored by the client (cache-aside), and a read while
        that fill is in flight misses too (in_flight.py)."""
        now = int(at)
        if self.in_flight.missing(key, at):
            return False
        lru = self.where.get(key)
        if lru is not None:
            flags = self.flags[key]
            if not flags & ACTIVE:
                if not flags & FETCHED:
                    self.flags[key] = flags | FETCHED
                elif lru != COLD:
                    self.flags[key] = flags | ACTIVE
                    self.time[key] = now
                else:  # the bump queue: to WARM's head, ACTIVE cleared
                    del self.lrus[COLD][key]
                    self.lrus[WARM][key] = None
                    self.where[key] = WARM
                    self.time[key] = now
            self._juggle(now)
            return True
        self.in_flight.missed(key, at)
        if len(self.where) >= self.capacity:
            self._evict()
        self.lrus[HOT][key] = None
        self.where[key] = HOT
        self.flags[key] = 0
        self.time[key] = now
        self._juggle(now)
        return False

    def _evict(self) -> None:
        for lru in (COLD, HOT, WARM):
            if self.lrus[lru]:
                key, _ = self.lrus[lru].popitem(last=False)
                del self.where[key], self.flags[key], self.time[key]
                return

    def _move(self, key: int, src: int, dst: int) -> None:
        del self.lrus[src][key]
        self.lrus[dst][key] = None
        self.where[key] = dst

    def _juggle(self, now: int) -> None:
        hot, warm, cold = self.lrus
        if self.ages:
            cold_age = now - self.time[next(iter(cold))] if cold else 0
            hot_age, warm_age = int(cold_age * HOT_MAX_FACTOR), int(cold_age * WARM_MAX_FACTOR)
        else:
            hot_age = warm_age = 1 << 62
        for lru, limit, max_age in ((hot, self.hot_limit, hot_age), (warm, self.warm_limit, warm_age)):
            for _ in range(len(lru)):
                key = next(iter(lru))
                flags = self.flags[key]
                if flags & ACTIVE:
                    self.flags[key] = flags & ~ACTIVE
                    self._move(key, HOT if lru is hot else WARM, WARM)
                elif len(lru) > limit or now - self.time[key] > max_age:
                    self._move(key, HOT if lru is hot else WARM, COLD)
                else:
                    break


def simulate_memcached(
    ids: Sequence[int],
    times: Sequence[float],
    capacities: Sequence[int],
    *,
    warm: int = 0,
    ages: bool = False,
    fill_s: float = 0.0,
) -> list[tuple[Counter[int], bool]]:
    """Per capacity (objects): the misses after the first `warm` reads, by key, and whether the
    cache was full when counting began."""
    out = []
    for cap in capacities:
        cache = MemcachedSegmentedLRU(cap, ages=ages, fill_s=fill_s)
        by_key: Counter[int] = Counter()
        filled = False
        access = cache.access
        for i, kid in enumerate(ids):
            if i == warm:
                filled = len(cache.where) >= 0.95 * cache.capacity
            if not access(kid, times[i]) and i >= warm:
                by_key[kid] += 1
        if warm >= len(ids):
            filled = len(cache.where) >= 0.95 * cache.capacity
        out.append((by_key, filled))
    return out

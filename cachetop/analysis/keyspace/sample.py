"""What the keyspace walk keeps while it runs: every name counted per prefix, and a bounded,
stratified choice of keys for the per-key calls.

Names are cheap (SCAN returns them anyway), so each one is counted under its prefix (the hot-key
roll-up, metrics/prefix.py). The keys that get the costly per-key calls are chosen per prefix by
bottom-k hashing: each key gets a pseudo-random rank (a keyed hash of its name) and a prefix keeps
the k lowest-ranked keys it has seen. Whatever k later becomes, the k lowest ranks are a uniform
random sample of that prefix's keys, so a reservoir can shrink when memory is short and still be a
fair sample. At the end the sample is shared out over the prefixes, half in proportion to their
size and half equally, so a small prefix is not lost in a uniform sample (allocate()).
"""

from __future__ import annotations

import heapq
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetop.metrics.prefix import PrefixRoller

MAX_PREFIXES = 1_000  # distinct prefixes tracked; later ones are counted under OTHER
OTHER = b"(other prefixes)"
RESERVOIR_FACTOR = 3  # keys kept over all prefixes, as a multiple of the sample asked for


def salted_rank() -> Callable[[bytes], int]:
    """A fresh pseudo-random rank per walk: Python's keyed hash of a new salt and the name."""
    salt = secrets.token_bytes(8)

    def rank_of(key: bytes) -> int:
        return hash(salt + key) & 0x7FFF_FFFF_FFFF_FFFF

    return rank_of


_M64 = 0xFFFF_FFFF_FFFF_FFFF


def seeded_rank(seed: int) -> Callable[[bytes], int]:
    """A rank that is the same in every process for the same seed (`--seed`: a repeatable sample):
    the name's CRC-32 and length through splitmix64, whose avalanche leaves no trace of the
    name's make-up (a weak mix picked keys by their digit count, and so their values' sizes)."""
    base = (seed * 0x9E37_79B9_7F4A_7C15) & _M64

    def rank_of(key: bytes) -> int:
        z = (((len(key) << 32) | zlib.crc32(key)) + base) & _M64
        z = ((z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB) & _M64
        return (z ^ (z >> 31)) >> 1

    return rank_of


@dataclass
class Stratum:
    """One prefix: the names counted and a bottom-k reservoir (a max-heap of (-rank, key))."""

    counted: int = 0
    cap: int = 0
    heap: list[tuple[int, bytes]] = field(default_factory=list)

    def offer(self, key: bytes, r: int) -> None:
        self.counted += 1
        if len(self.heap) < self.cap:
            heapq.heappush(self.heap, (-r, key))
        elif self.heap and -self.heap[0][0] > r:
            heapq.heapreplace(self.heap, (-r, key))

    def shrink(self, cap: int) -> None:
        self.cap = cap
        while len(self.heap) > cap:
            heapq.heappop(self.heap)

    def lowest(self, n: int) -> list[bytes]:
        """The n lowest-ranked keys kept: a uniform sample of the prefix's counted names."""
        return [key for _, key in heapq.nlargest(n, self.heap)]


class NameCounter:
    """Counts every name per prefix and keeps the reservoirs within RESERVOIR_FACTOR * sample keys."""

    def __init__(self, sample: int, roller: PrefixRoller | None = None, seed: int | None = None) -> None:
        self.sample = max(1, sample)
        self.rank = salted_rank() if seed is None else seeded_rank(seed)
        self.roller = roller or PrefixRoller()
        self.strata: dict[bytes, Stratum] = {}
        self.kept = 0
        self.counted = 0

    def add(self, keys: list[bytes]) -> None:
        rollup = self.roller.rollup
        rank_of = self.rank
        strata = self.strata
        for key in keys:
            prefix = rollup(key)
            stratum = strata.get(prefix)
            if stratum is None:
                if len(strata) >= MAX_PREFIXES:
                    prefix = OTHER
                    stratum = strata.get(prefix)
                if stratum is None:
                    stratum = strata[prefix] = Stratum(cap=self.sample)
            before = len(stratum.heap)
            stratum.offer(key, rank_of(key))
            self.kept += len(stratum.heap) - before
        self.counted += len(keys)
        if self.kept > RESERVOIR_FACTOR * self.sample:
            self._make_room()

    def _make_room(self) -> None:
        """Halves the largest reservoirs until the total fits (each stays a uniform sample)."""
        limit = RESERVOIR_FACTOR * self.sample
        while self.kept > limit:
            biggest = max(self.strata.values(), key=lambda s: len(s.heap))
            size = len(biggest.heap)
            if size <= 1:
                return
            biggest.shrink(size // 2)
            self.kept -= size - len(biggest.heap)


def allocate(available: dict[bytes, int], counts: dict[bytes, int], total: int) -> dict[bytes, int]:
    """How many keys of each prefix get the per-key calls: `total` shared half in proportion to
    the prefixes' counts and half equally, never more than a prefix has kept (`available`);
    what a prefix cannot use goes to the others."""
    alloc = dict.fromkeys(available, 0)
    open_ = {p for p, n in available.items() if n > 0}
    left = min(total, sum(available.values()))
    while left > 0 and open_:
        weight_total = sum(counts[p] for p in open_) or 1
        share = {p: left * (0.5 * counts[p] / weight_total + 0.5 / len(open_)) for p in open_}
        given = 0
        for p in sorted(open_, key=lambda p: -share[p]):
            room = available[p] - alloc[p]
            add = min(room, max(1, int(share[p])), left - given)
            alloc[p] += add
            given += add
            if given >= left:
                break
        left -= given
        open_ = {p for p in open_ if alloc[p] < available[p]}
        if given == 0:
            break
    return alloc

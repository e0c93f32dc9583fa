"""Spatial sampling of a key stream (SHARDS, Waldspurger et al., FAST'15).

A key is kept when its hash, spread over [0, 2**24), falls below rate * 2**24; every access of a
kept key is kept, so each kept key's reuse pattern is exact and the sample stands for the whole
stream with every cache size scaled by the rate. The hash is CRC-32 spread by a Fibonacci
multiplication: fast in C, the same in every process (Python's hash() is salted), and a `seed`
picks another subset for error studies.

Hit ratios from a sample are estimated from its misses (SHARDS' adjustment): the number of reads
in the whole stream is known exactly (every line is seen), so hit ratio = 1 - misses / (reads x
rate). A key so hot that it is always in the cache adds no misses, so whether it happens to be in
the sample or not moves this estimate far less than it moves the plain ratio hits / sampled reads.
"""

from __future__ import annotations

import zlib
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

SPACE = 1 << 24
# A write of a key this soon after a read of it, with no write between, is taken as the client's
# fill of that read's miss (in_flight.py); later, it is some other write.
FILL_S = 0.1
# Reads are counted per key (for the stratified estimate, curve.py) up to this many distinct keys;
# past it the count stops and curves use the plain estimate.
MAX_COUNTED_KEYS = 4_000_000


def read_bin(reads: int) -> int:
    """A key's frequency class: keys read 1, 2-3, 4-7, 8-15... times fall in bins 1, 2, 3, 4..."""
    return reads.bit_length()


_FIB = 0x9E3779B1


def key_hash(key: bytes, seed: int = 0) -> int:
    """A key's place in [0, SPACE): CRC-32, mixed with the seed, spread by a multiplication."""
    return (((zlib.crc32(key) ^ (seed * _FIB)) * _FIB) & 0xFFFFFFFF) >> 8


class SpatialFilter:
    """Keeps a key when key_hash(key) < rate * SPACE; remembers each key's verdict."""

    def __init__(self, rate: float, seed: int = 0) -> None:
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"sample rate must be in (0, 1], got {rate}")
        self.rate = rate
        self.seed = seed
        self.threshold = max(1, round(rate * SPACE))
        self._verdict: dict[bytes, bool] = {}

    def keep(self, key: bytes) -> bool:
        verdict = self._verdict.get(key)
        if verdict is None:
            verdict = key_hash(key, self.seed) < self.threshold
            if len(self._verdict) < 2_000_000:  # bounded memory on a huge key space
                self._verdict[key] = verdict
        return verdict


@dataclass
class SampledTrace:
    """The reads of the kept keys, in order: key ids, times (seconds), sizes (bytes, 0 = unknown).

    `reads_total` counts every read of the stream, kept or not (the estimator's denominator);
    `writes_total` every write. Cache-aside: a miss is filled by the client, so a read is what
    the simulated cache serves and a write only tells the value's size."""

    rate: float
    ids: array = field(default_factory=lambda: array("q"))
    times: array = field(default_factory=lambda: array("d"))
    sizes: array = field(default_factory=lambda: array("q"))
    before: array = field(default_factory=lambda: array("q"))  # reads_total before each kept read
    tracks_writes: bool = False  # the stream shows writes (MONITOR, watch), not reads alone
    # Seconds from a read to the client's fill, summed over the fills seen (add_write), and how
    # many: their mean is how long a miss stays in flight (fill_s). On memcached the read is one the
    # server missed (watch says so); MONITOR shows no verdict, so on Redis any write of the key
    # within FILL_S of a read counts, a rewrite after a hit too.
    fill_delay_total: float = 0.0
    fills: int = 0
    time_factor: float = 1.0  # rescale_times's factor, applied to fill_s too
    reads_total: int = 0
    writes_total: int = 0
    first_time: float | None = None
    last_time: float | None = None
    # Reads of every key of the stream, kept or not (None: too many keys, or not counted).
    all_reads: Counter[bytes] | None = field(default_factory=Counter)
    bins: dict[int, int] | None = None  # reads per read_bin over all keys, when given directly
    _id_of: dict[bytes, int] = field(default_factory=dict)
    _size_of: dict[int, int] = field(default_factory=dict)
    # key -> time of a read that may have missed, while no write has followed (later reads of
    # the key within FILL_S may be in flight with it: the chain keeps its first read's time)
    _in_flight: dict[int, float] = field(default_factory=dict)

    @property
    def keys(self) -> int:
        return len(self._id_of)

    @property
    def duration_s(self) -> float:
        if self.first_time is None or self.last_time is None:
            return 0.0
        return self.last_time - self.first_time

    def count_all(self, keys: Iterable[bytes]) -> None:
        """Counts reads of any keys (kept or not), for read_bins()."""
        if self.all_reads is None:
            return
        self.all_reads.update(keys)
        if len(self.all_reads) > MAX_COUNTED_KEYS:
            self.all_reads = None

    def read_bins(self) -> dict[int, int] | None:
        """Reads per frequency class over every key of the stream; None when not known."""
        if self.bins is not None:
            return self.bins
        if not self.all_reads:
            return None
        bins: Counter[int] = Counter()
        for n in self.all_reads.values():
            bins[read_bin(n)] += n
        return dict(bins)

    def some_keys(self, n: int) -> list[bytes]:
        return [k for k, _ in zip(self._id_of, range(n), strict=False)]

    def key_id(self, key: bytes) -> int:
        kid = self._id_of.get(key)
        if kid is None:
            kid = self._id_of[key] = len(self._id_of) + 1
        return kid

    def add_read(self, key: bytes, at: float, size: int = 0, *, hit: bool | None = None) -> None:
        """`hit`: the server's verdict on this read when the stream shows it (memcached's watch);
        a read the server hit is not timed to a fill, whatever write follows."""
        kid = self.key_id(key)
        if size <= 0:
            size = self._size_of.get(kid, 0)
        if self.tracks_writes:
            first = self._in_flight.get(kid)
            if hit:  # the server hit it: no fill is in flight, whatever came before
                self._in_flight.pop(kid, None)
            elif first is None or at - first >= FILL_S:
                self._in_flight[kid] = at
            # else in flight with the chain's first read, if that one missed
        self.ids.append(kid)
        self.before.append(self.reads_total - 1)  # add_read comes after reads_total counted it
        self.times.append(at)
        self.sizes.append(size)
        self._seen(at)

    def add_write(self, key: bytes, at: float, size: int) -> None:
        kid = self.key_id(key)
        first = self._in_flight.pop(kid, None)
        if first is not None and at - first < FILL_S:  # the client's fill of a miss
            self.fill_delay_total += at - first
            self.fills += 1
        if size > 0:
            self._size_of[kid] = size
        self._seen(at)

    def _seen(self, at: float) -> None:
        if self.first_time is None:
            self.first_time = at
        self.last_time = at

    def rescale_times(self, factor: float) -> None:
        """Multiplies every time since the first by `factor` (profile_redis.time_scale)."""
        self.time_factor *= factor
        start = self.first_time or 0.0
        self.times = array("d", (start + (t - start) * factor for t in self.times))
        if self.last_time is not None:
            self.last_time = start + (self.last_time - start) * factor

    @property
    def fill_s(self) -> float:
        """How long a miss stays in flight (seconds on the trace's clock): reads of the key in that
        time miss too; 0 when the stream shows no fills."""
        return self.time_factor * self.fill_delay_total / self.fills if self.fills else 0.0

    def reads_from(self, index: int) -> int:
        """Reads of the whole stream from the kept read at `index` on."""
        if index >= len(self.before):
            return 0
        return self.reads_total - self.before[index]

    def mean_size(self) -> float:
        known = [s for s in self.sizes if s > 0]
        return sum(known) / len(known) if known else 0.0

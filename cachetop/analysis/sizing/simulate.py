"""Misses of a sampled trace under a policy, for a list of capacities, key by key.

libCacheSim (the `libcachesim` package) runs the textbook policies in C, one request at a time
(about 2 µs a request from Python), so each miss is known by key: curve.py weighs the misses by
how often their keys are read (post-stratification). Redis's sampled LRU/LFU has no match there
and runs in redis_sim.py; memcached's segmented LRU neither (libCacheSim's SLRU read 3-4 points
high, exact LRU 5 points low on the acceptance workload) and runs in memcached_sim.py.

Capacities are in objects when the trace has no sizes (each object is UNIT bytes, so a capacity
scaled by a sample rate keeps two decimals), else in bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from cachetop.analysis.sizing.memcached_sim import simulate_memcached
from cachetop.analysis.sizing.redis_sim import simulate_redis
from cachetop.analysis.sizing.shards import SampledTrace

UNIT = 100
# A simulated cache at least this full after the warm-up counts as filled.
FULL = 0.95

# name -> (libcachesim class name or None for ours, label)
POLICIES: dict[str, tuple[str | None, str]] = {
    "redis-lru": (None, "Redis allkeys-lru (sampled)"),
    "redis-lfu": (None, "Redis allkeys-lfu (sampled)"),
    "lru": ("LRU", "LRU (exact)"),
    "lfu": ("LFU", "LFU (exact)"),
    "s3fifo": ("S3FIFO", "S3-FIFO, if the client or a proxy used it"),
    "sieve": ("Sieve", "SIEVE, if the client or a proxy used it"),
    "memcached": (None, "memcached segmented LRU (hot/warm/cold)"),
}


@dataclass(frozen=True)
class SimResult:
    filled: bool  # the cache was full when counting began
    by_key: Counter[int]  # the misses after the warm-up, per key id

    @property
    def misses(self) -> int:
        return self.by_key.total()


# The smallest cache, in objects, each libCacheSim policy can be built with.
MIN_UNITS = {"S3FIFO": 10}


def _libcachesim_misses(
    trace: SampledTrace, class_name: str, capacities: Sequence[float], by_size: bool, warm: int
) -> list[SimResult]:
    import libcachesim as lcs  # imported here: 0.2 s, only when a curve is built

    cls = getattr(lcs, class_name)
    # libCacheSim's default table has 2**24 buckets (128 MB to set up per cache): size it to the
    # sample's keys instead.
    hashpower = max(10, min(24, (trace.keys or len(trace.ids)).bit_length() + 1))
    ids = trace.ids
    sizes = [max(1, s) for s in trace.sizes] if by_size else [UNIT] * len(ids)
    out = []
    for cap in capacities:
        size = round(cap if by_size else cap * UNIT)
        by_key: Counter[int] = Counter()
        if size < 1:
            by_key.update(ids[warm:])
            out.append(SimResult(True, by_key))
            continue
        if size < MIN_UNITS.get(class_name, 1) * (1 if not by_size else max(sizes, default=1)):
            # Too small for this policy's queues (S3-FIFO's small queue is 10% of the cache, and
            # libCacheSim aborts the whole process when it is empty): every access counts as a miss,
            # and the point is marked a lower bound (not filled) rather than a prediction.
            by_key.update(ids[warm:])
            out.append(SimResult(False, by_key))
            continue
        cache = cls(cache_size=size, hashpower=hashpower)
        get = cache.get
        req = lcs.Request()
        filled = False
        for i, (kid, obj_size) in enumerate(zip(ids, sizes, strict=True)):
            if i == warm:
                filled = cache.get_occupied_byte() >= FULL * size
            req.obj_id = kid
            req.obj_size = obj_size
            if not get(req) and i >= warm:
                by_key[kid] += 1
        if warm >= len(ids):
            filled = cache.get_occupied_byte() >= FULL * size
        out.append(SimResult(filled, by_key))
    return out


def sampled_misses(
    trace: SampledTrace,
    policy: str,
    capacities: Sequence[float],
    *,
    by_size: bool = False,
    warm: int = 0,
    samples: int = 5,
    log_factor: int = 10,
    decay_minutes: int = 1,
    seed: int = 0,
) -> list[SimResult]:
    """Misses after the first `warm` reads of the sampled trace at each (already scaled) capacity."""
    if not len(trace.ids):
        return [SimResult(False, Counter()) for _ in capacities]
    class_name, _label = POLICIES[policy]
    if class_name is not None:
        return _libcachesim_misses(trace, class_name, capacities, by_size, warm)
    if by_size:
        mean = trace.mean_size() or 1.0
        capacities = [c / mean for c in capacities]
    objects = [max(1, round(c)) for c in capacities]
    if policy == "memcached":
        runs = simulate_memcached(trace.ids, trace.times, objects, warm=warm, fill_s=trace.fill_s)
    else:
        runs = simulate_redis(
            trace.ids,
            trace.times,
            objects,
            lfu=policy == "redis-lfu",
            samples=samples,
            log_factor=log_factor,
            decay_minutes=decay_minutes,
            seed=seed,
            warm=warm,
            fill_s=trace.fill_s,
        )
    return [SimResult(filled, by_key) for by_key, filled in runs]

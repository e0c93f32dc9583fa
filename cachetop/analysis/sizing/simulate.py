"""Miss counts of a sampled trace under a policy, for a list of capacities.

libCacheSim (the `libcachesim` package) runs the textbook policies in C: the trace is written once
to a temporary file in its oracleGeneral binary format (24 bytes a request) and replayed per
capacity. Redis's sampled LRU/LFU has no match there and runs in redis_sim.py.

Capacities are in objects when the trace has no sizes (each object is UNIT bytes, so a capacity
scaled by a sample rate keeps two decimals), else in bytes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import numpy as np

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
    "slru": ("SLRU", "memcached's segmented LRU (simulated as SLRU)"),
}

_DTYPE = np.dtype([("t", "<u4"), ("id", "<u8"), ("sz", "<u4"), ("nx", "<i8")])


def _write_oracle(trace: SampledTrace, path: str, by_size: bool) -> None:
    rows = np.zeros(len(trace.ids), dtype=_DTYPE)
    times = np.frombuffer(trace.times, dtype=np.float64)
    rows["t"] = np.maximum(times - (trace.first_time or 0.0), 0).astype(np.uint32)
    rows["id"] = np.frombuffer(trace.ids, dtype=np.int64)
    if by_size:
        rows["sz"] = np.maximum(np.frombuffer(trace.sizes, dtype=np.int64), 1)
    else:
        rows["sz"] = UNIT
    rows["nx"] = -1
    rows.tofile(path)


def _libcachesim_misses(
    trace: SampledTrace, class_name: str, capacities: Sequence[float], by_size: bool, warm: int
) -> list[tuple[float, bool]]:
    import libcachesim as lcs  # imported here: 0.2 s, only when a curve is built

    cls = getattr(lcs, class_name)
    fd, path = tempfile.mkstemp(suffix=".oracleGeneral", prefix="cachetop-sizing-")
    os.close(fd)
    try:
        _write_oracle(trace, path, by_size)
        reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE, lcs.ReaderInitParam())
        # libCacheSim's default table has 2**24 buckets (128 MB to set up per cache): size it to
        # the sample's keys instead.
        hashpower = max(10, min(24, (trace.keys or len(trace.ids)).bit_length() + 1))
        out = []
        for cap in capacities:
            size = round(cap if by_size else cap * UNIT)
            counted = len(trace.ids) - warm
            if size < 1:
                out.append((float(counted), True))
                continue
            cache = cls(cache_size=size, hashpower=hashpower)
            if warm:
                cache.process_trace(reader, 0, warm)  # fills the cache; its state carries on
            filled = cache.get_occupied_byte() >= FULL * size
            obj_miss_ratio, _ = cache.process_trace(reader, warm, -1)
            out.append((obj_miss_ratio * counted, filled))
        del reader  # (its close() and its destructor both free: a double free)
        return out
    finally:
        os.unlink(path)


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
) -> list[tuple[float, bool]]:
    """(misses after the first `warm` reads, whether the cache was full by then) of the sampled
    trace at each (already scaled) capacity."""
    if not len(trace.ids):
        return [(0.0, False) for _ in capacities]
    class_name, _label = POLICIES[policy]
    if class_name is not None:
        return _libcachesim_misses(trace, class_name, capacities, by_size, warm)
    if by_size:
        mean = trace.mean_size() or 1.0
        capacities = [c / mean for c in capacities]
    return [
        (float(m), filled)
        for m, filled in simulate_redis(
            trace.ids,
            trace.times,
            [max(1, round(c)) for c in capacities],
            lfu=policy == "redis-lfu",
            samples=samples,
            log_factor=log_factor,
            decay_minutes=decay_minutes,
            seed=seed,
            warm=warm,
            refills=trace.refill,
        )
    ]

"""Zipf traces as SampledTraces, built with numpy (for the SHARDS error test and bench/sizing.py)."""

from __future__ import annotations

import statistics
from array import array

import numpy as np

from cachetop.analysis.sizing.curve import Curve
from cachetop.analysis.sizing.shards import SampledTrace, SpatialFilter


def zipf_ids(keys: int, alpha: float, requests: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, keys + 1, dtype=np.float64) ** alpha
    cdf = np.cumsum(weights) / weights.sum()
    ranks = np.minimum(np.searchsorted(cdf, rng.random(requests)), keys - 1)
    return rng.permutation(keys)[ranks]


def sampled(
    ids: np.ndarray, keys: int, rate: float, seed: int = 0, reads_per_s: float = 50_000.0
) -> SampledTrace:
    """The trace of reads of `key:<id>` as the profile would keep it at this rate and hash seed."""
    keep = SpatialFilter(rate, seed)
    kept_key = np.fromiter((keep.keep(b"key:%d" % k) for k in range(keys)), dtype=bool, count=keys)
    where = np.nonzero(kept_key[ids])[0]
    trace = SampledTrace(rate)
    trace.ids = array("q", (ids[where] + 1).tolist())
    trace.times = array("d", (where / reads_per_s).tolist())
    trace.sizes = array("q", bytes(8 * len(where)))
    trace.before = array("q", where.tolist())
    trace.reads_total = len(ids)
    trace._id_of = {b"key:%d" % k: int(k) + 1 for k in np.nonzero(kept_key)[0]}
    counts = np.bincount(ids, minlength=keys)
    counts = counts[counts > 0]
    classes = np.floor(np.log2(counts)).astype(np.int64) + 1  # shards.read_bin
    trace.all_reads = None
    trace.bins = {int(b): int(counts[classes == b].sum()) for b in np.unique(classes)}
    if len(where):
        trace.first_time, trace.last_time = float(trace.times[0]), float(trace.times[-1])
    return trace


def exact_hit_ratios(
    ids: np.ndarray, capacities: list[int], policy: str = "LRU", warm_share: float = 0.5
) -> list[float]:
    """libCacheSim in C over the whole trace (no sampling): hit ratio (%) after the first
    warm_share of the reads, at each capacity in objects, straight from process_trace."""
    import os
    import tempfile

    import libcachesim as lcs

    rows = np.zeros(len(ids), dtype=[("t", "<u4"), ("id", "<u8"), ("sz", "<u4"), ("nx", "<i8")])
    rows["t"] = np.arange(len(ids)) // 50_000
    rows["id"] = ids + 1
    rows["sz"] = 1
    rows["nx"] = -1
    fd, path = tempfile.mkstemp(suffix=".oracleGeneral")
    os.close(fd)
    try:
        rows.tofile(path)
        reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE, lcs.ReaderInitParam())
        warm = int(len(ids) * warm_share)
        out = []
        for cap in capacities:
            cache = getattr(lcs, policy)(cache_size=cap)
            cache.process_trace(reader, 0, warm)  # the state carries on into the next call
            miss_ratio, _ = cache.process_trace(reader, warm, -1)
            out.append(100.0 * (1.0 - miss_ratio))
        del reader  # its close() and its destructor both free
        return out
    finally:
        os.unlink(path)


def mae(curve: Curve, exact: list[float]) -> float:
    """Mean absolute error of a curve's hit ratios against the exact ones, as a fraction (0.01 is
    one point)."""
    return statistics.fmean(abs(p.hit_ratio - e) / 100 for p, e in zip(curve.points, exact, strict=True))

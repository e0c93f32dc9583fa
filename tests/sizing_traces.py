"""Zipf traces as SampledTraces, built with numpy (for the SHARDS error test and bench/sizing.py)."""

from __future__ import annotations

from array import array

import numpy as np

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
    if len(where):
        trace.first_time, trace.last_time = float(trace.times[0]), float(trace.times[-1])
    return trace

"""Windowed latency percentiles from a ring of DDSketches, one per time bucket, merged on read.

DDSketch bounds the relative error of every quantile (0.5% here) with memory that grows with
the log of the value range, never with the number of samples.
"""

from __future__ import annotations

import math
from collections import deque

from ddsketch import DDSketch

RELATIVE_ACCURACY = 0.005


class QuantileWindow:
    def __init__(
        self, window_s: float, bucket_s: float, relative_accuracy: float = RELATIVE_ACCURACY
    ) -> None:
        if window_s <= 0 or bucket_s <= 0:
            raise ValueError("window and bucket must be positive")
        self.window_s = window_s
        self.bucket_s = bucket_s
        self.relative_accuracy = relative_accuracy
        self._buckets: deque[tuple[int, DDSketch]] = deque()
        # The merge of every bucket but the newest, keyed by (oldest, newest) bucket index: only
        # the newest still changes, so a read costs two merges, not one per bucket.
        self._closed: tuple[tuple[int, int], DDSketch] | None = None

    def _bucket_index(self, now: float) -> int:
        return math.floor(now / self.bucket_s)

    def _expire(self, now: float) -> None:
        oldest_kept = self._bucket_index(now - self.window_s)
        while self._buckets and self._buckets[0][0] < oldest_kept:
            self._buckets.popleft()

    def add(self, value: float, now: float) -> None:
        """Adds one observation (must be > 0) made at `now` (seconds, any monotonic clock)."""
        index = self._bucket_index(now)
        if not self._buckets or self._buckets[-1][0] != index:
            self._buckets.append((index, DDSketch(self.relative_accuracy)))
        self._buckets[-1][1].add(value)
        self._expire(now)

    def merged(self, now: float) -> DDSketch:
        self._expire(now)
        merged = DDSketch(self.relative_accuracy)
        if not self._buckets:
            return merged
        *closed, (_, newest) = self._buckets
        if closed:
            key = (closed[0][0], closed[-1][0])
            if self._closed is None or self._closed[0] != key:
                cached = DDSketch(self.relative_accuracy)
                for _, sketch in closed:
                    cached.merge(sketch)
                self._closed = (key, cached)
            merged.merge(self._closed[1])
        merged.merge(newest)
        return merged

    def count(self, now: float) -> int:
        self._expire(now)
        return int(sum(sketch.count for _, sketch in self._buckets))

    def quantiles(self, now: float, qs: tuple[float, ...]) -> tuple[float | None, ...]:
        """The values at each quantile in qs over the window, or None when there were no samples."""
        merged = self.merged(now)
        if merged.count == 0:
            return tuple(None for _ in qs)
        return tuple(merged.get_quantile_value(q) for q in qs)

    def clear(self) -> None:
        self._buckets.clear()
        self._closed = None


def histogram_quantile(buckets: dict[int, int], q: float) -> float | None:
    """Quantile from a cumulative power-of-2 histogram {upper_bound: cumulative_count}.

    Redis' LATENCY HISTOGRAM only knows which bucket a call fell into, so the answer is that
    bucket's upper bound: an upper estimate, at most 2x the true value.
    """
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    for bound in bounds:
        if buckets[bound] >= rank:
            return float(bound)
    return float(bounds[-1])


def histogram_delta(new: dict[int, int], old: dict[int, int] | None) -> dict[int, int]:
    """Cumulative histogram over an interval: new minus old, bucket by bucket.

    Both are cumulative in the bucket dimension too; buckets missing from one side carry the
    count of the nearest lower bucket, which is what "cumulative" means.
    """
    if not old:
        return dict(new)
    bounds = sorted(set(new) | set(old))
    out: dict[int, int] = {}
    last_new = last_old = 0
    for bound in bounds:
        last_new = new.get(bound, last_new)
        last_old = old.get(bound, last_old)
        out[bound] = max(0, last_new - last_old)
    return out


def histogram_sum(histograms: list[dict[int, int]]) -> dict[int, int]:
    """Adds cumulative histograms (e.g. of several commands) into one."""
    bounds = sorted({b for h in histograms for b in h})
    out = dict.fromkeys(bounds, 0)
    for hist in histograms:
        last = 0
        for bound in bounds:
            last = hist.get(bound, last)
            out[bound] += last
    return out

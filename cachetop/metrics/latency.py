"""Windowed latency percentiles from a ring of DDSketches, one per time bucket, merged on read.

DDSketch bounds the relative error of every quantile (0.5% here) with memory that grows with
the log of the value range, never with the number of samples.

A percentile needs samples beyond it: the p99 of 30 probes is simply the second slowest, so one
slow probe more or less swings it between 0.04 ms and 187 ms (an alert on it flaps). So the
percentiles cover the window, or reach back further (up to `horizon_s`) until they rest on
`min_samples` probes, and say how many they rest on; samples_needed(q) is what a quantile
needs (p99: 100, p95: 20, p50: 2) before rules may act on it (alerts/rules.py).
"""

from __future__ import annotations

import math
from collections import deque

from ddsketch import DDSketch

RELATIVE_ACCURACY = 0.005


def samples_needed(q: float) -> int:
    """Samples for a q-quantile to lie below the slowest one: 1 / (1 - q), p99 -> 100."""
    return max(2, round(1.0 / (1.0 - q)))


class QuantileWindow:
    def __init__(
        self,
        window_s: float,
        bucket_s: float,
        relative_accuracy: float = RELATIVE_ACCURACY,
        *,
        horizon_s: float = 0.0,
    ) -> None:
        if window_s <= 0 or bucket_s <= 0:
            raise ValueError("window and bucket must be positive")
        self.window_s = window_s
        # How far back a percentile may reach for its min_samples (never less than the window).
        self.horizon_s = horizon_s
        self.bucket_s = bucket_s
        self.relative_accuracy = relative_accuracy
        self._buckets: deque[tuple[int, DDSketch]] = deque()
        # The merge of every bucket but the newest, keyed by (oldest, newest) bucket index: only
        # the newest still changes, so a read costs two merges, not one per bucket.
        self._closed: tuple[tuple[int, int], DDSketch] | None = None

    def _bucket_index(self, now: float) -> int:
        return math.floor(now / self.bucket_s)

    def _expire(self, now: float) -> None:
        oldest_kept = self._bucket_index(now - max(self.window_s, self.horizon_s))
        while self._buckets and self._buckets[0][0] < oldest_kept:
            self._buckets.popleft()

    def add(self, value: float, now: float) -> None:
        """Adds one observation (must be > 0) made at `now` (seconds, any monotonic clock)."""
        index = self._bucket_index(now)
        if not self._buckets or self._buckets[-1][0] != index:
            self._buckets.append((index, DDSketch(self.relative_accuracy)))
        self._buckets[-1][1].add(value)
        self._expire(now)

    def _first_in_span(self, now: float, min_samples: int) -> int:
        """Index in _buckets of the oldest bucket of the span: the window's first, or an older
        one while the span holds fewer than min_samples."""
        first_in_window = self._bucket_index(now - self.window_s)
        start = len(self._buckets)
        count = 0
        while start > 0 and (self._buckets[start - 1][0] >= first_in_window or count < min_samples):
            start -= 1
            count += int(self._buckets[start][1].count)
        return start

    def merged(self, now: float, min_samples: int = 0) -> DDSketch:
        self._expire(now)
        merged = DDSketch(self.relative_accuracy)
        buckets = list(self._buckets)[self._first_in_span(now, min_samples) :]
        if not buckets:
            return merged
        *closed, (_, newest) = buckets
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
        """Samples in the window."""
        self._expire(now)
        first = self._first_in_span(now, 0)
        return int(sum(sketch.count for _, sketch in list(self._buckets)[first:]))

    def quantiles(self, now: float, qs: tuple[float, ...], min_samples: int = 0) -> tuple[float | None, ...]:
        """The values at each quantile in qs over the window (reaching back for min_samples, see
        the module's docstring), or None when there were no samples."""
        return self.quantiles_and_count(now, qs, min_samples)[0]

    def quantiles_and_count(
        self, now: float, qs: tuple[float, ...], min_samples: int = 0
    ) -> tuple[tuple[float | None, ...], int]:
        """quantiles(), and how many samples they rest on."""
        merged = self.merged(now, min_samples)
        if merged.count == 0:
            return tuple(None for _ in qs), 0
        return tuple(merged.get_quantile_value(q) for q in qs), int(merged.count)

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

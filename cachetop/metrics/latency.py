"""Windowed latency percentiles from a ring of DDSketches, one per time bucket, merged on read.

DDSketch bounds the relative error of every quantile (0.5% here) with memory that grows with
the log of the value range, never with the number of samples.

A percentile needs samples beyond it: the p99 of 30 probes is simply the second slowest, so one
slow probe more or less swings it between 0.04 ms and 187 ms (an alert on it flapped). So when
the window holds fewer than `min_samples`, the percentiles come from the last `keep_recent`
probes instead (kept raw: 100 floats cost less than one more sketch), no older than
`horizon_s`, and say how many they rest on. samples_needed(q) is what a quantile needs before
rules may act on it (p99: 100, p95: 20, p50: 2; alerts/rules.py).
"""

from __future__ import annotations

import math
from array import array
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
        keep_recent: int = 0,
        horizon_s: float = 0.0,
    ) -> None:
        if window_s <= 0 or bucket_s <= 0:
            raise ValueError("window and bucket must be positive")
        self.window_s = window_s
        # The last keep_recent probes for a window that holds too few of them, in two rings of
        # doubles (1.6 KiB for 100: a fleet of 10,000 keeps them all in 16 MiB); none older than
        # horizon_s is used (after an outage, old probes say nothing).
        self.keep_recent = keep_recent
        self._recent_times = array("d", bytes(8 * keep_recent))
        self._recent_values = array("d", bytes(8 * keep_recent))
        self._recent_added = 0
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
        oldest_kept = self._bucket_index(now - self.window_s)
        while self._buckets and self._buckets[0][0] < oldest_kept:
            self._buckets.popleft()

    def add(self, value: float, now: float) -> None:
        """Adds one observation (must be > 0) made at `now` (seconds, any monotonic clock)."""
        index = self._bucket_index(now)
        if not self._buckets or self._buckets[-1][0] != index:
            self._buckets.append((index, DDSketch(self.relative_accuracy)))
        self._buckets[-1][1].add(value)
        if self.keep_recent:
            slot = self._recent_added % self.keep_recent
            self._recent_times[slot], self._recent_values[slot] = now, value
            self._recent_added += 1
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

    def quantiles(self, now: float, qs: tuple[float, ...], min_samples: int = 0) -> tuple[float | None, ...]:
        """The values at each quantile in qs over the window (or the last probes, see the module's
        docstring), or None when there were no samples."""
        return self.quantiles_and_count(now, qs, min_samples)[0]

    def quantiles_and_count(
        self, now: float, qs: tuple[float, ...], min_samples: int = 0
    ) -> tuple[tuple[float | None, ...], int]:
        """quantiles(), and how many samples they rest on."""
        merged = self.merged(now)
        if merged.count < min_samples:
            since = now - max(self.window_s, self.horizon_s)
            kept = min(self._recent_added, self.keep_recent)
            times, values = self._recent_times, self._recent_values
            if min(times[:kept], default=since) > since:  # the usual case: all recent enough
                recent = sorted(values[:kept])
            else:
                recent = sorted(values[i] for i in range(kept) if times[i] > since)
            if len(recent) > merged.count:
                # The same rank as DDSketch's: the sample at floor(q * (n - 1)), exactly.
                return tuple(recent[int(q * (len(recent) - 1))] for q in qs), len(recent)
        if merged.count == 0:
            return tuple(None for _ in qs), 0
        return tuple(merged.get_quantile_value(q) for q in qs), int(merged.count)

    def rebucket(self, bucket_s: float) -> None:
        """Changes the bucket length (the poll interval changed), keeping what the window holds:
        each bucket joins the new bucket its start falls in."""
        if bucket_s <= 0:
            raise ValueError("bucket must be positive")
        if bucket_s == self.bucket_s:
            return
        moved: deque[tuple[int, DDSketch]] = deque()
        for index, sketch in self._buckets:
            new_index = math.floor(index * self.bucket_s / bucket_s + 1e-9)  # 3 * 0.1 / 0.3 is 0.999…
            if moved and moved[-1][0] == new_index:
                moved[-1][1].merge(sketch)
            else:
                moved.append((new_index, sketch))
        self._buckets, self.bucket_s, self._closed = moved, bucket_s, None

    def clear(self) -> None:
        self._buckets.clear()
        self._recent_added = 0
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

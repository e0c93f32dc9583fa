"""The quantile sketch: bounded error, windowed by an explicit clock."""

from __future__ import annotations

import random

import pytest

from cachetop.metrics.latency import QuantileWindow, histogram_delta, histogram_quantile, histogram_sum


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_p99_is_within_one_percent_of_the_exact_value(seed: int) -> None:
    rng = random.Random(seed)
    # Latency-like data: a lognormal body around 0.2 ms with a long tail.
    values = [rng.lognormvariate(-1.6, 0.8) for _ in range(50_000)]
    window = QuantileWindow(window_s=10.0, bucket_s=1.0)
    for i, v in enumerate(values):
        window.add(v, now=i * 10.0 / len(values) * 0.99)
    p50, p95, p99 = window.quantiles(9.9, (0.5, 0.95, 0.99))
    for got, q in ((p50, 0.5), (p95, 0.95), (p99, 0.99)):
        exact = exact_quantile(values, q)
        assert got is not None
        assert abs(got - exact) / exact <= 0.01, (q, got, exact)


def test_memory_is_bounded_by_value_range_not_sample_count() -> None:
    window = QuantileWindow(window_s=10.0, bucket_s=1.0)
    for i in range(100_000):
        window.add(0.1 + (i % 1000) / 1000.0, now=5.0)
    sketch = window.merged(5.0)
    assert sketch.count == 100_000
    # 1000 distinct values between 0.1 and 1.1 fit in a few hundred log buckets.
    assert sketch._store.length() < 400


def test_old_buckets_leave_the_window() -> None:
    window = QuantileWindow(window_s=3.0, bucket_s=1.0)
    for _ in range(100):
        window.add(50.0, now=0.5)
    for _ in range(100):
        window.add(1.0, now=4.5)
    assert window.count(4.5) == 100
    (p99,) = window.quantiles(4.5, (0.99,))
    assert p99 == pytest.approx(1.0, rel=0.01)
    assert window.quantiles(20.0, (0.5,)) == (None,)


def test_histogram_helpers() -> None:
    cumulative = {1: 10, 2: 50, 4: 90, 8: 100}
    assert histogram_quantile(cumulative, 0.5) == 2.0
    assert histogram_quantile(cumulative, 0.9) == 4.0
    assert histogram_quantile(cumulative, 0.99) == 8.0
    assert histogram_quantile({}, 0.5) is None
    # Buckets missing on one side carry the lower bucket's cumulative count.
    assert histogram_delta({1: 10, 4: 30}, {1: 5, 2: 8}) == {1: 5, 2: 2, 4: 22}
    assert histogram_sum([{1: 1, 4: 3}, {2: 2}]) == {1: 1, 2: 3, 4: 5}


def test_reads_between_adds_see_every_sample_in_the_window() -> None:
    # The merge of closed buckets is cached; reading after every add must still count exactly.
    window = QuantileWindow(window_s=3.0, bucket_s=1.0)
    for i in range(100):
        now = i * 0.25
        window.add(1.0 + i, now)
        kept = [j for j in range(i + 1) if int(j * 0.25) >= int(now - 3.0)]
        assert window.count(now) == len(kept)
        assert window.merged(now).count == len(kept)
    (top,) = window.quantiles(24.75, (1.0,))
    assert top == pytest.approx(100.0, rel=0.01)

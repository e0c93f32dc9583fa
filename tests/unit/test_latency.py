"""The quantile sketch: bounded error, windowed by an explicit clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from cachetop.alerts.engine import AlertEngine
from cachetop.alerts.rules import Rule
from cachetop.engine.poller import PERCENTILE_PROBES, PROBES_PER_INTERVAL, latency_horizon
from cachetop.metrics.latency import QuantileWindow, histogram_delta, histogram_quantile, histogram_sum
from cachetop.model import InstanceMetrics, Snapshot, Status


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


# --- The flapping p99 rule (issue: `for = "5s"` on the 10 s p99 flapped between 0.04 and 187 ms) ---

INTERVAL, WINDOW = 1.0, 10.0  # the defaults: PROBES_PER_INTERVAL probes a second, 30 in a window
FAST, SLOW = 0.04, 187.0
P99_RULE = Rule(
    name="slow-p99", metric="latency_p99_ms", op=">", threshold=10.0, for_s=5.0, channels=("ops",)
)


def probe_times(until: float) -> list[float]:
    step = INTERVAL / PROBES_PER_INTERVAL
    return [i * step for i in range(int(until / step))]


def slow_bursts_every(period: float, probes: int) -> Callable[[float], float]:
    """`probes` slow probes in a row every `period` seconds (a fork for BGSAVE), fast otherwise."""
    step = INTERVAL / PROBES_PER_INTERVAL
    return lambda t: SLOW if t % period < probes * step - 1e-9 else FAST


def notifications(latency: Callable[[float], float], window: QuantileWindow, min_samples: int) -> list[str]:
    """Probes at the Poller's rate into `window`, the engine evaluated every second on its p99."""
    engine = AlertEngine([P99_RULE])
    kinds: list[str] = []
    probes = iter(probe_times(180.0))
    next_probe = next(probes)
    for second in range(1, 180):
        while next_probe <= second:
            window.add(latency(next_probe), next_probe)
            next_probe = next(probes)
        (p99,), count = window.quantiles_and_count(float(second), (0.99,), min_samples)
        metrics = {"latency_p99_ms": p99}
        if min_samples:  # before the fix there was no count: rules took any p99
            metrics["latency_probes"] = count
        inst = InstanceMetrics("cache-1", "redis", "h:1", Status.UP, None, metrics)
        result = engine.evaluate(Snapshot(1_800_000_000.0 + second, WINDOW, (inst,)), now=float(second))
        kinds += [n.kind for n in result.notifications]
    return kinds


def test_a_p99_rule_does_not_flap_on_a_slow_second_every_20s() -> None:
    latency = slow_bursts_every(20.0, 4)  # 4 slow probes in 60: the true p99 is 187 ms, all along
    bucket = max(INTERVAL, WINDOW / 5)
    # Why it flapped: the p99 of the 30 probes of 10 s is their second slowest, so it is 187 ms
    # for the 10 s after each burst and 0.04 ms for the 10 s after that: a page every 20 s.
    before = notifications(latency, QuantileWindow(WINDOW, bucket), min_samples=0)
    # (the engine's flap detection holds back the rest after the third firing)
    assert before == ["firing", "resolved", "firing", "resolved", "flapping"]
    # Now the p99 rests on the last 100 probes (the window holds 30): it stays 187 ms.
    window = QuantileWindow(
        WINDOW, bucket, keep_recent=PERCENTILE_PROBES, horizon_s=latency_horizon(WINDOW, INTERVAL)
    )
    assert notifications(latency, window, PERCENTILE_PROBES) == ["firing"]


def test_rules_wait_for_100_probes_before_acting_on_a_p99() -> None:
    window = QuantileWindow(WINDOW, 2.0, keep_recent=100, horizon_s=latency_horizon(WINDOW, INTERVAL))
    for i in range(99):
        window.add(SLOW, i / 3)
    (p99,), count = window.quantiles_and_count(33.0, (0.99,), PERCENTILE_PROBES)
    assert (p99, count) == (pytest.approx(SLOW, rel=0.01), 99)  # shown as it is (the dashboard), but...
    inst = InstanceMetrics(
        "c", "redis", "h:1", Status.UP, None, {"latency_p99_ms": p99, "latency_probes": count}
    )
    assert P99_RULE.value_of(inst) is None  # ...no data to a rule: 99 probes cannot make a p99
    window.add(SLOW, 33.0)
    (p99,), count = window.quantiles_and_count(33.0, (0.99,), PERCENTILE_PROBES)
    inst = InstanceMetrics(
        "c", "redis", "h:1", Status.UP, None, {"latency_p99_ms": p99, "latency_probes": count}
    )
    assert (P99_RULE.value_of(inst), count) == (pytest.approx(SLOW, rel=0.01), 100)
    p95_rule = replace(P99_RULE, metric="latency_p95_ms")
    few = InstanceMetrics("c", "redis", "h:1", Status.UP, None, {"latency_p95_ms": 5.0, "latency_probes": 19})
    assert p95_rule.value_of(few) is None
    assert p95_rule.value_of(replace(few, metrics={"latency_p95_ms": 5.0, "latency_probes": 20})) == 5.0


def test_a_window_with_too_few_probes_uses_the_last_100() -> None:
    window = QuantileWindow(10.0, 2.0, keep_recent=100, horizon_s=50.0)
    for i in range(150):  # 3 a second for 50 s, slow for the first 20 s
        window.add(SLOW if i < 60 else FAST, i / 3)
    # The window (whole 2 s buckets from 39.9 s back: 38..50 s) holds 36 probes, all fast...
    assert window.quantiles_and_count(49.9, (0.99,)) == ((pytest.approx(FAST, rel=0.01),), 36)
    # ...too few for a p99: the last 100 (16.7..49.7 s) hold 10 slow ones, the exact 99th of them.
    assert window.quantiles_and_count(49.9, (0.5, 0.99), 100) == ((FAST, SLOW), 100)
    # Nothing older than the horizon: 30 s later, only the probes after 30 s are left to use.
    assert window.quantiles_and_count(80.0, (0.99,), 100) == ((FAST,), 59)


def test_a_window_with_enough_probes_is_used_as_it_is() -> None:
    window = QuantileWindow(10.0, 2.0, keep_recent=100, horizon_s=60.0)
    for i in range(600):  # 10 a second for 60 s, slow before t = 48 s
        window.add(SLOW if i < 480 else FAST, i / 10)
    (p99,), count = window.quantiles_and_count(59.95, (0.99,), 100)
    assert (p99, count) == (pytest.approx(FAST, rel=0.01), 120)  # 48..60 s

"""The metric registry: what it refuses, the tables views derive from it, and the window inputs
its formulas read, with plain numbers."""

from __future__ import annotations

import pytest

from cachetop.metrics import registry
from cachetop.metrics.info import ColumnSpec, MetricInfo
from cachetop.metrics.latency import QuantileWindow
from cachetop.metrics.registry import METRICS, RegistryError, register, unregister
from cachetop.metrics.window import CounterWindow, WindowInputs, windowed_metrics
from cachetop.model import InstanceMetrics, Sample, Status
from cachetop.tui.health import Health


def test_a_taken_name_prometheus_name_or_column_key_is_refused() -> None:
    with pytest.raises(RegistryError, match="'hit_ratio' is already registered"):
        register(MetricInfo("hit_ratio", "%", "again"))
    with pytest.raises(RegistryError, match="Prometheus name 'ops_per_second' is taken"):
        register(MetricInfo("ops2", "ops/s", "clash", prom_name="ops_per_second"))
    with pytest.raises(RegistryError, match="column key 'hit' is taken"):
        register(MetricInfo("hit2", "%", "clash", column=ColumnSpec("hit", 6, 1)))
    with pytest.raises(RegistryError, match="built in"):
        unregister("hit_ratio")
    assert {"ops2", "hit2"}.isdisjoint(METRICS)


def test_register_then_unregister_changes_the_version_and_the_computed_metrics() -> None:
    before = registry.version()
    register(
        MetricInfo("test_double_hits", "hits", "twice the hits", compute=lambda m: 2 * (m.delta("hits") or 0))
    )
    try:
        assert registry.version() == before + 1
        w = CounterWindow(10.0)
        w.add(Sample(time=0.0, counters={"hits": 10}, gauges={}))
        w.add(Sample(time=1.0, counters={"hits": 17}, gauges={}))
        assert windowed_metrics(w)["test_double_hits"] == 14
    finally:
        unregister("test_double_hits")
    assert registry.version() == before + 2
    assert "test_double_hits" not in windowed_metrics(w)


def test_probe_percentiles_come_from_one_merge_and_any_other_quantile_on_demand() -> None:
    # 50 probes of 1..50 ms over 20 s, 26 of them in the 10 s window: fewer than the 100 a p99
    # needs, so the last 50 probes answer, exactly (metrics/latency.py).
    latency = QuantileWindow(10.0, 2.0, keep_recent=100, horizon_s=30.0)
    for i in range(1, 51):
        latency.add(float(i), i * 0.4)
    w = CounterWindow(10.0)
    w.add(Sample(time=20.0, counters={}, gauges={}))
    inputs = WindowInputs(w, latency, now=20.0, min_probes=100)
    assert inputs.probe_quantile(0.50) == 25.0  # sorted[int(0.5 * 49)]
    assert inputs.probe_quantile(0.99) == 49.0
    assert inputs.probe_count == 50
    assert inputs.probe_quantile(0.90) == 45.0  # not one of the registry's: merged again, with it
    assert inputs.probe_quantile(0.95) == 47.0
    values = windowed_metrics(w, latency, 20.0, 100)
    assert (values["latency_p50_ms"], values["latency_p95_ms"], values["latency_p99_ms"]) == (
        25.0,
        47.0,
        49.0,
    )
    assert values["latency_probes"] == 50


def test_charts_series_columns_and_summary_follow_the_registry_order() -> None:
    charts = {
        key: (info.title, [m.chart.label for m in members if m.chart])
        for key, info, _, members in registry.charts()
    }
    assert list(charts) == ["hit", "ops", "latency", "memory", "evictions"]
    assert charts["latency"] == ("latency", ["p99", "p95", "p50", "server p99"])
    assert charts["memory"] == ("memory", ["used", "max"])
    assert [i.column.key for i in registry.with_columns() if i.column] == [
        "hit", "ops", "p50", "p99", "mem", "err", "evict", "conn"
    ]  # fmt: skip
    assert [i.header for i in registry.in_summary()] == ["hit", "ops/s", "p99", "mem", "err"]


def test_default_health_levels_and_their_help_text_come_from_the_registry() -> None:
    inst = InstanceMetrics("a", "redis", "x:1", Status.UP, None, {"hit_ratio": 85.0, "error_rate": 6.0})
    health = Health()
    assert health.level(inst, "hit_ratio") == "warn"  # 80 <= 85 < 90
    assert health.level(inst, "error_rate") == "bad"  # >= 5
    assert health.level(inst, "ops_per_sec", 1e6) is None  # no healthy direction
    assert health.threshold_text(inst, "hit_ratio") == "target ≥ 90"
    assert health.threshold_text(inst, "latency_p99_ms") == "target < 10"

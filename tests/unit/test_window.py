"""Windowed metrics from plain numbers and an explicit clock."""

from __future__ import annotations

from cachetop.metrics.window import CounterWindow, command_stats, windowed_metrics
from cachetop.model import Sample


def sample(t: float, epoch: str = "run-1", **counters: int) -> Sample:
    base = {"hits": 0, "misses": 0, "commands": 0, "errors": 0, "evictions": 0, "expired": 0}
    base.update(counters)
    gauges = {"memory_used": 250.0, "memory_max": 1000.0, "connections": 7.0}
    return Sample(time=t, counters=base, gauges=gauges, epoch=epoch)


def test_900_hits_and_100_misses_give_exactly_90() -> None:
    w = CounterWindow(10.0)
    w.add(sample(0.0, hits=5000, misses=5000, commands=20000))
    w.add(sample(1.0, hits=5900, misses=5100, commands=21000))
    m = windowed_metrics(w)
    assert m["hit_ratio"] == 90.0
    assert m["ops_per_sec"] == 1000.0
    assert m["memory_used_pct"] == 25.0
    assert m["connections"] == 7


def test_no_reads_gives_null_not_zero() -> None:
    w = CounterWindow(10.0)
    w.add(sample(0.0, hits=10, misses=10, commands=100))
    w.add(sample(1.0, hits=10, misses=10, commands=150))
    m = windowed_metrics(w)
    assert m["hit_ratio"] is None
    assert m["ops_per_sec"] == 50.0


def test_one_sample_has_no_rates() -> None:
    w = CounterWindow(10.0)
    w.add(sample(0.0, hits=10))
    m = windowed_metrics(w)
    assert m["hit_ratio"] is None and m["ops_per_sec"] is None and m["evictions_per_sec"] is None


def test_window_slides_and_covers_the_full_span() -> None:
    w = CounterWindow(3.0)
    for t in range(10):
        # 100 hits per second, then 100 misses per second from t=5 on.
        hits = 100 * min(t, 5)
        misses = 100 * max(0, t - 5)
        w.add(sample(float(t), hits=hits, misses=misses, commands=100 * t))
    assert w.span == 3.0
    assert [s.time for s in w.samples] == [6.0, 7.0, 8.0, 9.0]
    assert windowed_metrics(w)["hit_ratio"] == 0.0
    assert windowed_metrics(w)["ops_per_sec"] == 100.0


def test_counter_reset_starts_a_new_window_never_a_negative_rate() -> None:
    w = CounterWindow(10.0)
    w.add(sample(0.0, hits=1000, commands=5000, evictions=50))
    w.add(sample(1.0, hits=1100, commands=5200, evictions=60))
    assert w.add(sample(2.0, hits=3, commands=10, evictions=0)) is True  # CONFIG RESETSTAT
    m = windowed_metrics(w)
    assert m["ops_per_sec"] is None and m["evictions_per_sec"] is None
    w.add(sample(3.0, hits=13, commands=30, evictions=1))
    m = windowed_metrics(w)
    assert m["ops_per_sec"] == 20.0
    assert m["evictions_per_sec"] == 1.0
    assert w.resets == 1


def test_new_epoch_is_a_reset_even_when_counters_grew() -> None:
    w = CounterWindow(10.0)
    w.add(sample(0.0, epoch="a", commands=10))
    assert w.add(sample(1.0, epoch="b", commands=5000)) is True
    assert windowed_metrics(w)["ops_per_sec"] is None


def test_error_rate_counts_failed_polls_among_all_requests() -> None:
    w = CounterWindow(10.0)
    w.add(sample(0.0, commands=0, errors=0))
    w.add(sample(1.0, commands=990, errors=9))
    # 990 commands plus our 1 poll in the window
    assert windowed_metrics(w)["error_rate"] == 100.0 * 9 / 991
    w.record_failure(1.5)
    w.add(sample(2.0, commands=1989, errors=9))
    # 2 successful poll intervals + 1 failed poll; the failure is one failed request
    assert windowed_metrics(w)["error_rate"] == 100.0 * 10 / (1989 + 3)


def test_one_timeout_on_a_quiet_instance_is_not_100_percent() -> None:
    w = CounterWindow(10.0)
    for t in range(10):
        w.add(sample(float(t)))
    w.record_failure(9.5)
    w.add(sample(10.0))
    assert windowed_metrics(w)["error_rate"] == 100.0 * 1 / 11
    idle = CounterWindow(10.0)
    idle.add(sample(0.0))
    idle.add(sample(1.0))
    assert windowed_metrics(idle)["error_rate"] == 0.0


def test_cachetops_own_commands_and_errors_are_taken_out() -> None:
    w = CounterWindow(10.0)
    w.add(sample(0.0, commands=100, own_commands=40, errors=5, own_errors=1))
    # 70 commands in the window, 30 of them ours; 3 error replies, 1 of them ours (ACL NOPERM)
    w.add(sample(1.0, commands=170, own_commands=70, errors=8, own_errors=2))
    m = windowed_metrics(w)
    assert m["ops_per_sec"] == 40.0
    assert m["error_rate"] == 100.0 * 2 / (40 + 1)
    # Our count overshooting (commands sent on a dying connection) never makes a negative rate.
    dying = CounterWindow(10.0)
    dying.add(sample(0.0, commands=10, own_commands=0))
    dying.add(sample(1.0, commands=11, own_commands=3))
    assert windowed_metrics(dying)["ops_per_sec"] == 0.0


def test_a_gap_longer_than_the_window_starts_afresh() -> None:
    w = CounterWindow(3.0)
    w.add(sample(0.0, commands=0))
    w.add(sample(1.0, commands=100))
    assert w.add(sample(300.0, commands=90_000)) is True  # paused for 5 minutes
    assert windowed_metrics(w)["ops_per_sec"] is None
    w.add(sample(301.0, commands=90_050))
    assert windowed_metrics(w)["ops_per_sec"] == 50.0
    assert w.resets == 0  # not a server reset


def test_server_latency_from_histogram_deltas_skips_admin_commands() -> None:
    w = CounterWindow(10.0)
    old = {"get": {1: 100, 2: 100, 4: 100}, "ping": {1: 5}}
    # In the window: 90 gets at <= 2us, 10 at <= 16us; 1000 pings (ours) must not count.
    new = {"get": {1: 100, 2: 190, 4: 190, 8: 190, 16: 200}, "ping": {1: 1005}}
    w.add(Sample(time=0.0, counters={}, gauges={}, latency_histograms=old))
    w.add(Sample(time=1.0, counters={}, gauges={}, latency_histograms=new))
    lat = windowed_metrics(w)
    assert lat["server_latency_p50_ms"] == 0.002
    assert lat["server_latency_p99_ms"] == 0.016


def test_command_stats_are_windowed_without_our_own_calls() -> None:
    w = CounterWindow(10.0)
    w.add(
        Sample(
            time=0.0,
            counters={},
            gauges={},
            commandstats={"get": (100, 1000, 0), "set": (5, 50, 0), "info": (10, 500, 0)},
            own_commandstats={"info": 10},
        )
    )
    w.add(
        Sample(
            time=2.0,
            counters={},
            gauges={},
            commandstats={"get": (300, 1600, 4), "set": (5, 50, 0), "info": (14, 700, 0)},
            own_commandstats={"info": 12},
        )
    )
    stats = command_stats(w)
    assert set(stats) == {"get", "info"}
    assert stats["get"].calls_per_sec == 100.0
    assert stats["get"].usec_per_call == 3.0
    assert stats["get"].failed_per_sec == 2.0
    assert stats["info"].calls_per_sec == 1.0  # 4 calls, 2 of them ours


def test_server_latency_leaves_out_commands_that_are_mostly_ours() -> None:
    w = CounterWindow(10.0)
    old = Sample(
        time=0.0,
        counters={},
        gauges={},
        commandstats={"get": (0, 0, 0), "object|freq": (0, 0, 0)},
        latency_histograms={"get": {1: 0}, "object|freq": {1: 0}},
    )
    # 100 application GETs at <= 2 us; 900 OBJECT FREQ calls at <= 64 us, 890 of them ours.
    new = Sample(
        time=1.0,
        counters={},
        gauges={},
        commandstats={"get": (100, 200, 0), "object|freq": (900, 50000, 0)},
        latency_histograms={"get": {2: 100}, "object|freq": {64: 900}},
        own_commandstats={"object|freq": 890},
    )
    w.add(old)
    w.add(new)
    lat = windowed_metrics(w)
    assert lat["server_latency_p99_ms"] == 0.002

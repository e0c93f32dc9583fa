"""Running totals for Prometheus counters: own traffic out, never down across a restart."""

from __future__ import annotations

from cachetop.metrics.totals import RunningTotals
from cachetop.model import Sample


def sample(t: float, hits: int, own_hits: int = 0, *, epoch: str = "a", uptime: float = 1000.0) -> Sample:
    counters = {"hits": hits, "own_hits": own_hits, "misses": 0, "commands": hits, "own_commands": own_hits}
    return Sample(time=t, counters=counters, gauges={}, facts={"uptime_s": str(int(uptime))}, epoch=epoch)


def test_totals_start_at_zero_and_leave_our_own_reads_out() -> None:
    totals = RunningTotals()
    totals.add(sample(0, hits=5000))  # what the server counted before we came: not ours to show
    assert totals.values()["hits"] == 0
    totals.add(sample(1, hits=5100, own_hits=10))
    assert totals.values()["hits"] == 90
    assert totals.values()["commands"] == 90
    assert totals.values()["misses"] == 0
    assert "evictions" not in totals.values()  # a counter the backend does not report


def test_a_restart_adds_what_the_new_server_counted_and_never_goes_down() -> None:
    totals = RunningTotals()
    totals.add(sample(0, hits=5000))
    totals.add(sample(1, hits=5300))
    totals.add(sample(3, hits=40, epoch="b", uptime=1))  # restarted within the gap
    assert totals.values()["hits"] == 340
    totals.add(sample(4, hits=60, epoch="b", uptime=2))
    assert totals.values()["hits"] == 360
    # CONFIG RESETSTAT: the same server, its counters back near 0.
    totals.add(sample(5, hits=7, epoch="b", uptime=3))
    assert totals.values()["hits"] == 367


def test_a_failover_to_a_long_running_server_adds_nothing_for_the_switch() -> None:
    totals = RunningTotals()
    totals.add(sample(0, hits=100))
    totals.add(sample(1, hits=150))
    totals.add(sample(2, hits=9_000_000, epoch="replica", uptime=86400))  # its whole life: not news
    assert totals.values()["hits"] == 50
    totals.add(sample(3, hits=9_000_020, epoch="replica", uptime=86401))
    assert totals.values()["hits"] == 70

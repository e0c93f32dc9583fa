"""A profile too short for the cache (the guard ended MONITOR early, a slow client) must not give a
curve that looks trusted: its simulated cache is full but not warm, and reads low (issue 15)."""

from __future__ import annotations

from pathlib import Path

from cachetop.analysis.sizing.analyse import analyse_trace
from cachetop.analysis.sizing.curve import MIN_WARM_READS_PER_OBJECT, CurveRequest, build_curves
from cachetop.analysis.sizing.memory import MemoryModel
from cachetop.analysis.sizing.shards import SampledTrace


def loop_trace(keys: int, reads: int) -> SampledTrace:
    t = SampledTrace(1.0)
    for i in range(reads):
        t.reads_total += 1
        t.add_read(b"k%d" % (i % keys), float(i))
    return t


def test_a_full_cache_warmed_on_too_few_reads_per_object_is_a_lower_bound() -> None:
    # 100 keys in a loop, 600 reads: the warm-up half (300 reads) fills every cache of 100 objects
    # or fewer, but passes 6 reads per object at 50 and only 3 at 100 (below 4): flagged there.
    assert MIN_WARM_READS_PER_OBJECT == 4.0
    curves = build_curves(
        loop_trace(100, 600), CurveRequest(100, MemoryModel(1.0), ["lru"], factors=(0.5, 1.0))
    )
    assert [(p.memory_bytes, p.hit_ratio, p.filled) for p in curves[0].points] == [
        (50, 0.0, True),
        (100, 100.0, False),
    ]
    # Twice as long: 600 warm-up reads, 6 per object at 100: trusted.
    curves = build_curves(loop_trace(100, 1200), CurveRequest(100, MemoryModel(1.0), ["lru"], factors=(1.0,)))
    assert [(p.hit_ratio, p.filled) for p in curves[0].points] == [(100.0, True)]


def test_the_report_says_how_short_the_trace_was_and_that_the_curve_is_unreliable(tmp_path: Path) -> None:
    path = tmp_path / "loop.txt"
    path.write_text("".join(f"k{i % 100}\n" for i in range(600)))
    report = analyse_trace(path, rate=1.0, memory_bytes=100, policies=["lru"])
    assert report.unfilled_from() == 100
    assert (
        "the profile saw 600 reads (600 sampled, 100 keys) in 599.0 s: too few to warm a cache of "
        "100 keys or more (half the trace warms it and must pass at least 4 reads per object it holds), "
        "so hit ratios from there up are lower bounds, marked ≥ (a longer trace)"
    ) in report.notes
    assert "the curve is unreliable even at the current size" in " ".join(report.notes)
    sample = report.to_json()["sample"]
    assert sample["ended_early"] is None and sample["reads_total"] == 600
    report.ended_early = "output buffer reached 4194304 bytes: sampling paused"
    assert report.to_json()["sample"]["ended_early"] == report.ended_early

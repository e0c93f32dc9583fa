"""Sizing's pure parts on plain numbers: the SHARDS hash and filter, Redis's sampled eviction,
curve interpolation, the memory model, the trace file and the calibration note."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachetop.analysis.sizing.curve import Curve, CurvePoint, CurveRequest, build_curves
from cachetop.analysis.sizing.memory import MemoryModel, memcached_model, redis_model
from cachetop.analysis.sizing.redis_sim import RedisSampledCache, simulate_redis
from cachetop.analysis.sizing.report import SizingReport, compared_policies
from cachetop.analysis.sizing.shards import SPACE, SampledTrace, SpatialFilter, key_hash
from cachetop.analysis.sizing.trace_file import TraceFileError, read_trace


def test_key_hash_is_fixed_across_processes_and_seeds_pick_other_subsets() -> None:
    assert key_hash(b"user:1") == key_hash(b"user:1") < SPACE
    kept = [sum(SpatialFilter(0.01, seed).keep(b"key:%d" % i) for i in range(100_000)) for seed in (0, 1)]
    assert all(900 <= k <= 1100 for k in kept), kept  # 1% of 100,000 keys, give or take 10%
    s0 = {i for i in range(20_000) if SpatialFilter(0.05, 0).keep(b"key:%d" % i)}
    s1 = {i for i in range(20_000) if SpatialFilter(0.05, 1).keep(b"key:%d" % i)}
    assert len(s0 & s1) < len(s0) // 4  # another seed, another subset
    with pytest.raises(ValueError):
        SpatialFilter(0.0)


def test_sampled_trace_counts_every_read_and_keeps_the_kept_ones_in_order() -> None:
    t = SampledTrace(0.5)
    for i, key in enumerate([b"a", b"b", b"a", b"c"]):
        t.reads_total += 1
        if key != b"b":
            t.add_read(key, float(i))
    assert list(t.ids) == [1, 1, 2] and t.reads_total == 4 and t.keys == 2
    assert t.reads_from(1) == 2  # the read of `a` at index 1 of the kept ones, and `c` after it
    t.rescale_times(0.5)
    assert list(t.times) == [0.0, 1.0, 1.5]


def test_redis_lru_evicts_the_longest_idle_on_its_one_second_clock() -> None:
    cache = RedisSampledCache(2, samples=5, seed=1)  # 5 samples of 3 keys: the pool sees them all
    assert [cache.access(k, t) for k, t in ((1, 0.0), (2, 1.0), (1, 2.0), (3, 3.0))] == [False] * 2 + [
        True,
        False,
    ]
    assert sorted(cache.keys) == [1, 3]  # key 2 was idle 2 s, key 1 only 1 s


def test_redis_lfu_keeps_the_frequent_key_and_starts_new_keys_at_five() -> None:
    cache = RedisSampledCache(2, lfu=True, samples=5, seed=3)
    for _ in range(20):
        cache.access(1, 0.0)
    cache.access(2, 0.0)
    assert cache.stamp[2] == 5 and cache.stamp[1] > 5
    cache.access(3, 0.0)  # key 2 and key 3 both have counter 5: one of them goes, never key 1
    assert 1 in cache.keys and len(cache.keys) == 2
    # A minute later the counter decays by one per lfu-decay-time minute.
    before = cache.stamp[1]
    assert cache._decayed(1, 180.0) == before - 3


def test_curve_answers_by_linear_interpolation() -> None:
    curve = Curve(
        "lru", "LRU", (CurvePoint(100, 40.0, 1), CurvePoint(200, 60.0, 2), CurvePoint(400, 70.0, 4))
    )
    assert curve.hit_ratio_at(150) == pytest.approx(50.0)
    assert curve.hit_ratio_at(300) == pytest.approx(65.0)
    assert curve.hit_ratio_at(50) is None and curve.hit_ratio_at(400) == 70.0
    assert curve.memory_for(50.0) == pytest.approx(150.0)
    assert curve.memory_for(30.0) == 100.0 and curve.memory_for(80.0) is None


def test_memory_models_map_bytes_to_objects() -> None:
    m = redis_model({"used_memory": 41_000_000, "used_memory_startup": 1_000_000}, 40_000, [900, 1100])
    assert m.bytes_per_object == 1000.0 and m.objects_at(21_000_000) == 20_000
    assert m.bytes_for(20_000) == 21_000_000 and "MEMORY USAGE of 2 keys: mean 1000" in m.how
    mc = memcached_model(
        {"limit_maxbytes": 64 << 20, "curr_items": 50_000, "bytes": 60 << 20, "evictions": 7}
    )
    assert mc.objects_at(32 << 20) == pytest.approx(25_000)
    assert MemoryModel(1.0, by_size=True).objects_at(500) == 500


def test_build_curves_on_a_loop_hits_exactly_when_the_loop_fits() -> None:
    # 100 keys read in a loop, 20 times: LRU holds them all at >= 100 objects (every read after
    # the warm-up hits) and none below (LRU on a loop larger than the cache always misses).
    t = SampledTrace(1.0)
    for i in range(2000):
        t.reads_total += 1
        t.add_read(b"k%d" % (i % 100), float(i))
    curves = build_curves(t, CurveRequest(100, MemoryModel(1.0), ["lru"], factors=(0.5, 1.0, 2.0)))
    assert [(p.memory_bytes, p.hit_ratio, p.filled) for p in curves[0].points] == [
        (50, 0.0, True),
        (100, 100.0, True),
        (200, 100.0, False),  # 100 keys never fill 200 slots: flagged
    ]


def test_trace_file_lines_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "t.txt"
    good.write_text("# key size time\na 10 0.5\nb,20,1.0\n\na 10 2\n")
    trace, sized = read_trace(good, 1.0)
    assert sized and list(trace.ids) == [1, 2, 1] and list(trace.sizes) == [10, 20, 10]
    bad = tmp_path / "bad.txt"
    bad.write_text("a 10\nb x\n")
    with pytest.raises(TraceFileError, match=r"bad.txt:2: SIZE must be a whole number"):
        read_trace(bad, 1.0)
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("a 10\nb\n")
    with pytest.raises(TraceFileError, match=r"mixed.txt:2: some lines have a SIZE"):
        read_trace(mixed, 1.0)


def test_calibration_says_a_disagreement_of_more_than_three_points() -> None:
    curve = Curve("redis-lru", "Redis", (CurvePoint(100, 50.0, 1), CurvePoint(200, 60.0, 2)))
    agree = SizingReport("r", "allkeys-lru", "redis-lru", 200, 58.0, [curve], MemoryModel(1.0), 0.05)
    agree.calibrate()
    assert agree.notes == []
    off = SizingReport("r", "allkeys-lru", "redis-lru", 200, 55.0, [curve], MemoryModel(1.0), 0.05)
    off.calibrate()
    assert off.notes and "predicts 60.0% but the server measured 55.0%" in off.notes[0]
    assert off.to_json()["hit_ratio_predicted_now"] == 60.0
    assert compared_policies("redis-lfu") == ["redis-lfu", "redis-lru", "s3fifo"]


def test_a_read_while_its_fill_is_in_flight_misses_too() -> None:
    # Cache-aside with two GETs of one key in flight: GET k (miss), GET k (miss: no SET yet), SET k
    # 20 ms after the first GET; that gap is how long a miss stays in flight.
    t = SampledTrace(1.0, tracks_writes=True)
    for at in (0.0, 0.01):
        t.reads_total += 1
        t.add_read(b"k", at)
    t.add_write(b"k", 0.02, 10)
    t.reads_total += 1
    t.add_read(b"k", 0.03)
    t.reads_total += 1
    t.add_read(b"k", 5.0)  # long after: the earlier read was served, whatever it was
    t.add_write(b"k", 5.5, 10)  # half a second after a read: some other write, not a fill
    assert (t.fills, t.fill_s) == (1, pytest.approx(0.02))
    t.rescale_times(0.5)  # the trace's clock scaled back (profile_redis.time_scale): the gap too
    assert t.fill_s == pytest.approx(0.01)
    cache = RedisSampledCache(10, fill_s=0.02)
    assert [cache.access(k, at) for k, at in zip(t.ids, (0.0, 0.01, 0.03, 5.0), strict=True)] == [
        False,
        False,
        True,
        True,
    ]


def test_watch_lines_keep_reads_and_leave_out_a_stores_own_lookup() -> None:
    from cachetop.analysis.sizing.watch_trace import WatchTraceParser

    trace = SampledTrace(1.0)
    parser = WatchTraceParser(trace, SpatialFilter(1.0))
    lines = (
        b"ts=1.0 gid=1 type=item_get key=foo status=not_found clsid=0 cfd=25 size=0\n"  # the client's GET
        b"ts=1.1 gid=2 type=item_get key=foo status=not_found clsid=0 cfd=25 size=0\n"  # the SET's lookup
        b"ts=1.2 gid=3 type=item_store key=foo status=stored cmd=set ttl=0 clsid=1 cfd=25 size=3\n"
        b"ts=1.3 gid=4 type=item_get key=a%20b status=found clsid=1 cfd=26 size=3\n"
        b"skipped=7\n"
        b"ts=1.4 gid=5 type=item_get key=foo status=fo"  # a partial line, kept for the next chunk
    )
    rest = parser.feed(lines)
    assert rest.startswith(b"ts=1.4")
    parser.flush()
    assert (trace.reads_total, trace.writes_total, parser.lines, parser.skipped) == (2, 1, 4, 7)
    assert [trace.some_keys(5)[i - 1] for i in trace.ids] == [b"foo", b"a b"]
    assert list(trace.times) == [1.0, 1.3]


def test_a_hot_key_the_model_evicts_comes_back_when_the_server_never_missed_it() -> None:
    # A key read every 10 ms that the server always hit (no SET ever follows), and another key read
    # once at 0.505 s: a one-object simulated cache misses the hot key at its first read and once
    # more right after the other key pushes it out (the two tie on the 1-second clock, and the older
    # pool entry goes first); each time the read 10 ms later misses too (its fill takes 20 ms), and
    # the other 96 reads hit.
    # Marking every read within 0.1 s of the last one as in flight made the model miss the hot key
    # at all 100 reads: a key the model once missed never came back while its reads kept coming
    # (issue 15: the Redis curve at half the memory read 12-23 points low).
    t = SampledTrace(1.0, tracks_writes=True)
    for i in range(100):
        t.reads_total += 1
        t.add_read(b"hot", i / 100)
        if i == 50:
            t.reads_total += 1
            t.add_read(b"other", 0.505)
    assert t.fills == 0
    ((by_key, _filled),) = simulate_redis(t.ids, t.times, [1], fill_s=0.02)
    assert dict(by_key) == {1: 4, 2: 1}

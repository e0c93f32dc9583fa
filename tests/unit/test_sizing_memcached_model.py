"""memcached's segmented LRU model (analysis/sizing/memcached_sim.py) and the watch parser's
in-flight fills, on plain numbers."""

from __future__ import annotations

import pytest

from cachetop.analysis.sizing.memcached_sim import COLD, HOT, WARM, MemcachedSegmentedLRU, simulate_memcached
from cachetop.analysis.sizing.shards import SampledTrace, SpatialFilter
from cachetop.analysis.sizing.watch_trace import WatchTraceParser


def test_a_key_read_twice_outlives_a_scan_that_exact_lru_would_lose_it_to() -> None:
    cache = MemcachedSegmentedLRU(10)  # HOT at most 2 items, WARM at most 4
    assert [cache.access(1, 0.0) for _ in range(3)] == [False, True, True]  # stored, FETCHED, ACTIVE
    assert [cache.access(k, 0.0) for k in range(100, 120)] == [False] * 20
    assert cache.where[1] == WARM  # pulled from HOT's tail while ACTIVE
    assert len(cache.where) == 10 and len(cache.lrus[HOT]) == 2
    assert cache.access(1, 0.0)  # exact LRU of 10 would have evicted it after 10 new keys


def test_a_key_read_once_goes_to_cold_and_one_more_read_there_bumps_it_to_warm() -> None:
    cache = MemcachedSegmentedLRU(10)
    cache.access(1, 0.0)
    cache.access(1, 0.0)  # FETCHED only
    for k in range(100, 103):
        cache.access(k, 0.0)
    assert cache.where[1] == COLD  # HOT over its 2 items: not ACTIVE, so to COLD
    assert cache.access(1, 0.0) and cache.where[1] == WARM
    # never read after its store: evicted from COLD's tail once the cache is full
    misses = simulate_memcached([5, *range(200, 215), 5], [0.0] * 17, [10])[0][0]
    assert misses[5] == 2


def _watch(parser: WatchTraceParser, *lines: bytes) -> None:
    parser.feed(b"".join(lines))
    parser.flush()


def test_a_fill_is_timed_from_a_get_the_server_missed_and_never_from_a_hit() -> None:
    trace = SampledTrace(1.0)
    parser = WatchTraceParser(trace, SpatialFilter(1.0))
    _watch(
        parser,
        b"ts=1.00 gid=1 type=item_get key=a status=not_found clsid=0 cfd=9 size=0\n",
        b"ts=1.01 gid=2 type=item_get key=b status=found clsid=1 cfd=9 size=3\n",
        b"ts=1.02 gid=3 type=item_get key=a status=not_found clsid=0 cfd=9 size=0\n",  # a's fill not in yet
        b"ts=1.03 gid=4 type=item_get key=b status=found clsid=1 cfd=9 size=3\n",
        # the client fills a 50 ms after its first get, and rewrites b after a hit (each store
        # comes after its own lookup, which is not a read): b's store is no fill
        b"ts=1.04 gid=5 type=item_get key=a status=not_found clsid=0 cfd=9 size=0\n",
        b"ts=1.05 gid=6 type=item_store key=a status=stored cmd=set ttl=0 clsid=1 cfd=9 size=3\n",
        b"ts=1.06 gid=7 type=item_get key=b status=found clsid=1 cfd=9 size=3\n",
        b"ts=1.07 gid=8 type=item_store key=b status=stored cmd=set ttl=0 clsid=1 cfd=9 size=3\n",
    )
    assert (trace.reads_total, len(trace.ids)) == (4, 4)
    assert (trace.fills, trace.fill_s) == (1, pytest.approx(0.05))


def test_a_miss_the_model_has_keeps_its_key_missing_for_the_fill_time_only() -> None:
    # fill_s 0.05: key 1 misses at 0.0 and 0.03 (its fill not in), hits at 0.06; key 2 likewise
    ids, times = [1, 1, 1, 2, 2], [0.0, 0.03, 0.06, 1.0, 1.2]
    misses = simulate_memcached(ids, times, [10], fill_s=0.05)[0][0]
    assert dict(misses) == {1: 2, 2: 1}


def test_a_hit_after_a_miss_ends_the_chain_so_a_later_rewrite_is_no_fill() -> None:
    # a's fill was not seen (watch dropped it): the server then hits a, and a rewrite 80 ms after
    # the miss is not timed as its fill
    trace = SampledTrace(1.0, tracks_writes=True)
    trace.add_read(b"a", 1.00, hit=False)
    trace.add_read(b"a", 1.03, hit=True)
    trace.add_write(b"a", 1.08, 3)
    assert (trace.fills, trace.fill_s) == (0, 0.0)

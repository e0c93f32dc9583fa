"""memcached's segmented LRU model (analysis/sizing/memcached_sim.py) and the watch parser's
refill marks, on plain numbers."""

from __future__ import annotations

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


def test_a_read_counts_as_a_fill_in_flight_only_when_the_server_missed_the_read_before() -> None:
    trace = SampledTrace(1.0)
    parser = WatchTraceParser(trace, SpatialFilter(1.0))
    _watch(
        parser,
        b"ts=1.00 gid=1 type=item_get key=a status=not_found clsid=0 cfd=9 size=0\n",
        b"ts=1.01 gid=2 type=item_get key=b status=found clsid=1 cfd=9 size=3\n",
        b"ts=1.02 gid=3 type=item_get key=a status=not_found clsid=0 cfd=9 size=0\n",  # a's fill not in yet
        b"ts=1.03 gid=4 type=item_get key=b status=found clsid=1 cfd=9 size=3\n",  # b hit: nothing in flight
        # the client fills a (the store's own lookup, then the store), and rewrites b after a hit
        b"ts=1.04 gid=5 type=item_get key=a status=not_found clsid=0 cfd=9 size=0\n",
        b"ts=1.05 gid=6 type=item_store key=a status=stored cmd=set ttl=0 clsid=1 cfd=9 size=3\n",
        b"ts=1.06 gid=7 type=item_get key=b status=found clsid=1 cfd=9 size=3\n",
        b"ts=1.07 gid=8 type=item_store key=b status=stored cmd=set ttl=0 clsid=1 cfd=9 size=3\n",
    )
    assert list(trace.refill) == [0, 0, 1, 0]


def test_without_a_fill_no_read_counts_as_in_flight() -> None:
    # The server missed a, but no store of a followed: nothing says the client fills (it may not),
    # so no read is marked; a model that missed would otherwise miss a for as long as it is read.
    trace = SampledTrace(1.0)
    parser = WatchTraceParser(trace, SpatialFilter(1.0))
    _watch(
        parser,
        b"ts=1.00 gid=1 type=item_get key=a status=not_found clsid=0 cfd=9 size=0\n",
        b"ts=1.02 gid=2 type=item_get key=a status=not_found clsid=0 cfd=9 size=0\n",
    )
    assert list(trace.refill) == [0, 0]

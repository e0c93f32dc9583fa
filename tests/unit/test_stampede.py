from cachetop.hotkeys.stampede import StampedeDetector


def test_misses_then_several_writers_is_one_stampede() -> None:
    d = StampedeDetector(window_s=2.0, min_writers=3)
    for i, client in enumerate([b"c1", b"c2", b"c3", b"c4"]):
        d.read(b"k", client, 10.0 + i * 0.01)
    assert d.write(b"k", b"c1", 10.1) is None
    assert d.write(b"k", b"c2", 10.2) is None
    event = d.write(b"k", b"c3", 10.3)
    assert event is not None
    assert (event.key, event.writers, event.readers) == (b"k", 3, 4)
    assert d.write(b"k", b"c4", 10.4) is None  # one event per key per window
    assert d.total == 1
    assert d.count_since(10.0) == 1
    assert d.count_since(10.31) == 0


def test_writers_that_did_not_read_first_are_not_a_stampede() -> None:
    d = StampedeDetector(window_s=2.0, min_writers=3)
    d.read(b"k", b"c1", 1.0)
    for client in (b"c1", b"c2", b"c3", b"c4"):
        assert d.write(b"k", client, 1.1) is None


def test_reads_older_than_the_window_do_not_count() -> None:
    d = StampedeDetector(window_s=1.0, min_writers=2)
    d.read(b"k", b"a", 1.0)
    d.read(b"k", b"b", 1.0)
    assert d.write(b"k", b"a", 2.5) is None
    assert d.write(b"k", b"b", 2.6) is None
    d.read(b"k", b"a", 3.0)
    d.read(b"k", b"b", 3.1)
    assert d.write(b"k", b"a", 3.2) is None
    assert d.write(b"k", b"b", 3.3) is not None


def test_memory_is_bounded() -> None:
    d = StampedeDetector(window_s=10.0, min_writers=2, max_entries=5)
    for i in range(100):
        d.read(f"k{i}".encode(), b"c", 1.0)
    assert len(d._reads) == 5
    assert d.saturated


def test_chunks_of_reads_and_writes_give_the_same_events_and_decode_the_key() -> None:
    d = StampedeDetector(window_s=2.0, min_writers=3, decode=lambda k: k.upper())
    d.read_many([(b"k", b"c1"), (b"k", b"c2"), (b"k", b"c3"), (b"k", b"c1"), (b"other", b"c4")], 1.0)
    assert d.write_many([(b"k", b"c1"), (b"k", b"c2"), (b"k", b"c9")], 1.1) == []  # c9 never read it
    events = d.write_many([(b"k", b"c3"), (b"other", b"c1")], 1.2)
    assert [(e.key, e.writers, e.readers) for e in events] == [(b"K", 3, 3)]
    assert d.total == 1


def test_a_chunk_past_the_bound_is_cut_and_says_so() -> None:
    d = StampedeDetector(window_s=10.0, min_writers=2, max_entries=5)
    d.read_many([(f"k{i}".encode(), b"c") for i in range(8)], 1.0)
    assert len(d._reads) == 5
    assert d.saturated
    assert d.write_many([(b"k7", b"c")], 1.1) == []  # not remembered


def test_repeated_reads_near_the_bound_refresh_without_saturating() -> None:
    d = StampedeDetector(window_s=10.0, min_writers=2, max_entries=3)
    d.read_many([(b"a", b"c1"), (b"b", b"c1")], 1.0)
    d.read_many([(b"a", b"c1")] * 5 + [(b"c", b"c1")], 2.0)  # one new pair, room for one
    assert not d.saturated
    assert d._reads[(b"a", b"c1")] == 2.0
    d.read_many([(b"d", b"c1"), (b"a", b"c1")], 3.0)  # full: d is cut, a still refreshed
    assert d.saturated
    assert (b"d", b"c1") not in d._reads and d._reads[(b"a", b"c1")] == 3.0


def test_a_read_at_time_zero_and_readers_counted_once_across_generations() -> None:
    d = StampedeDetector(window_s=2.0, min_writers=2)
    d.read_many([(b"k", b"c1"), (b"k", b"c2"), (b"k", b"c3")], 0.0)
    d.read_many([(b"k", b"c1"), (b"k", b"c2")], 2.5)  # a new generation: the old one is kept
    events = d.write_many([(b"k", b"c1"), (b"k", b"c2")], 2.6)
    assert [(e.writers, e.readers) for e in events] == [(2, 3)]
    d2 = StampedeDetector(window_s=2.0, min_writers=1)
    d2.read(b"z", b"c", 0.0)
    assert d2.write(b"z", b"c", 0.5) is not None  # read_at 0.0 is a time, not a missing one

from cachetop.hotkeys.monitor_parser import READ, WRITE
from cachetop.hotkeys.watch_parser import WatchParser, WatchResult

# Lines as memcached 1.6.18 writes them (captured from `watch fetchers mutations`).
GET_MISS = b"ts=1.1 gid=2 type=item_get key=foo status=not_found clsid=0 cfd=25 size=0\r\n"
SET_LOOKUP = b"ts=1.2 gid=3 type=item_get key=foo status=not_found clsid=0 cfd=26 size=0\r\n"
SET_STORE = b"ts=1.3 gid=4 type=item_store key=foo status=stored cmd=set ttl=0 clsid=1 cfd=26 size=3\r\n"
GET_HIT = b"ts=1.4 gid=5 type=item_get key=foo status=found clsid=1 cfd=25 size=3\r\n"


def test_hits_misses_and_the_lookup_inside_a_store() -> None:
    parser = WatchParser()
    out = WatchResult()
    parser.feed(GET_MISS + SET_LOOKUP + SET_STORE + GET_HIT, out)
    parser.flush(out)
    # count, reads, writes, hits, misses: the set's own lookup is not a read
    assert out.counts == {b"foo": [3, 2, 1, 1, 1]}
    # A lookup is held until the next line of its connection shows it was not a store, so the
    # order is kept per connection (what the stampede detector needs), not across connections.
    assert out.accesses == [
        (b"foo", b"26", WRITE, False),
        (b"foo", b"25", READ, True),
        (b"foo", b"25", READ, False),
    ]
    assert out.lines == 4


def test_skipped_lines_are_counted_and_keys_url_decoded() -> None:
    parser = WatchParser()
    out = WatchResult()
    data = b"skipped=17\r\nts=1.1 gid=2 type=item_get key=a%20b%FF status=found clsid=1 cfd=9 size=1\r\n"
    parser.feed(data, out)
    parser.flush(out)
    assert out.skipped == 17
    assert out.counts == {b"a b\xff": [1, 1, 0, 1, 0]}


def test_a_pending_lookup_survives_one_chunk_boundary_only() -> None:
    parser = WatchParser()
    out = WatchResult()
    parser.feed(SET_LOOKUP, out)
    assert out.counts == {}  # might still be the start of a store
    parser.feed(SET_STORE, out)
    assert out.counts == {b"foo": [1, 0, 1, 0, 0]}
    parser.feed(GET_MISS, out)
    parser.feed(b"ts=1.9 gid=9 type=item_get key=bar status=found clsid=1 cfd=30 size=3\r\n", out)
    assert out.counts[b"foo"] == [2, 1, 1, 0, 1]

from cachetop.hotkeys.monitor_parser import (
    READ,
    WRITE,
    MonitorParser,
    ParseResult,
    command_table_from_redis,
    unquote,
)

LINES = (
    b'+1700000000.000001 [0 127.0.0.1:5001] "GET" "user:1"\r\n'
    b'+1700000000.000002 [0 127.0.0.1:5002] "set" "user:1" "v a l"\r\n'
    b'+1700000000.000003 [0 127.0.0.1:5001] "MGET" "a" "b" "c"\r\n'
    b'+1700000000.000004 [3 127.0.0.1:5003] "MSET" "k1" "v1" "k2" "v2"\r\n'
    b'+1700000000.000005 [0 127.0.0.1:5001] "PING"\r\n'
    b'+1700000000.000006 [0 127.0.0.1:9999] "GET" "mine"\r\n'
    b'+1700000000.000007 [0 lua] "del" "x" "y"\r\n'
)


def counts_of(result: ParseResult) -> dict[bytes, list[int]]:
    return {k: v for k, v in result.counts.items()}


def test_parses_keys_reads_and_writes() -> None:
    parser = MonitorParser(own_clients=[b"127.0.0.1:9999"])
    out = ParseResult()
    rest = parser.feed(LINES, out)
    assert rest == b""
    assert counts_of(out) == {
        b"user:1": [2, 1, 1, 0, 0],
        b"a": [1, 1, 0, 0, 0],
        b"b": [1, 1, 0, 0, 0],
        b"c": [1, 1, 0, 0, 0],
        b"k1": [1, 0, 1, 0, 0],
        b"k2": [1, 0, 1, 0, 0],
        b"x": [1, 0, 1, 0, 0],
        b"y": [1, 0, 1, 0, 0],
    }
    assert (out.lines, out.own, out.keyed) == (7, 1, 9)
    assert sorted(out.reads) == [
        (b"a", b"127.0.0.1:5001"),
        (b"b", b"127.0.0.1:5001"),
        (b"c", b"127.0.0.1:5001"),
        (b"user:1", b"127.0.0.1:5001"),
    ]
    assert sorted(out.writes) == [
        (b"k1", b"127.0.0.1:5003"),
        (b"k2", b"127.0.0.1:5003"),
        (b"user:1", b"127.0.0.1:5002"),
        (b"x", b"lua"),
        (b"y", b"lua"),
    ]


def test_a_chunk_of_single_key_commands_counts_each_key_once_per_line() -> None:
    # The fast path: counts per (command, key) from C, and the stampede pairs stay quoted.
    lines = [
        b'+1.0 [0 10.0.0.%d:1] "%s" "k%d"\r\n' % (i % 3, b"GET" if i % 4 else b"SET", i % 5)
        for i in range(100)
    ]
    lines.append(b'+1.0 [0 10.0.0.9:1] "GET" "esc\\x1b"\r\n')
    out = ParseResult()
    MonitorParser().feed(b"".join(lines), out)
    assert {k: v[0] for k, v in out.counts.items()} == {
        b"k0": 20,
        b"k1": 20,
        b"k2": 20,
        b"k3": 20,
        b"k4": 20,
        b"esc\x1b": 1,
    }
    assert sum(v[1] for v in out.counts.values()) == 76  # GETs: i % 4 != 0, plus the escaped one
    assert sum(v[2] for v in out.counts.values()) == 25
    assert (out.lines, out.keyed, len(out.reads), len(out.writes)) == (101, 101, 76, 25)
    assert (b"esc\\x1b", b"10.0.0.9:1") in out.reads


def test_partial_lines_are_kept_for_the_next_chunk() -> None:
    parser = MonitorParser()
    out = ParseResult()
    cut = LINES.index(b"MGET") + 2
    rest = parser.feed(LINES[:cut], out)
    assert rest == LINES[LINES.rindex(b"\n", 0, cut) + 1 : cut]
    rest = parser.feed(rest + LINES[cut:], out)
    assert rest == b""
    assert out.lines == 7
    assert out.counts[b"c"][0] == 1


def test_escaped_arguments_are_unquoted_to_the_original_bytes() -> None:
    line = b'+1700000000.1 [0 1.2.3.4:5] "GET" "a\\"b\\\\c\\x1b[31m\\xff\\r\\n"\r\n'
    out = ParseResult()
    MonitorParser().feed(line, out)
    assert list(out.counts) == [b'a"b\\c\x1b[31m\xff\r\n']
    assert unquote(b"plain") == b"plain"
    assert unquote(b"\\t\\a\\b") == b"\t\a\b"


def test_unknown_commands_and_commands_without_keys_are_not_counted() -> None:
    data = b'+1.0 [0 1.2.3.4:5] "FOO.BAR" "k"\r\n+1.0 [0 1.2.3.4:5] "INFO" "stats"\r\n'
    out = ParseResult()
    MonitorParser().feed(data, out)
    assert out.counts == {}
    assert out.lines == 2


def test_command_table_from_the_servers_command_reply() -> None:
    reply = {
        "get": {"flags": ["readonly", "fast"], "first_key_pos": 1, "last_key_pos": 1, "step_count": 1},
        "mset": {"flags": ["write", "denyoom"], "first_key_pos": 1, "last_key_pos": -1, "step_count": 2},
        "ping": {"flags": ["fast"], "first_key_pos": 0, "last_key_pos": 0, "step_count": 0},
        "object": {"flags": [], "first_key_pos": 0, "last_key_pos": 0, "step_count": 0},
    }
    table = command_table_from_redis(reply)
    assert table == {b"get": (1, 1, 1, READ), b"mset": (1, -1, 2, WRITE)}
    out = ParseResult()
    MonitorParser(table).feed(b'+1.0 [0 c:1] "mset" "a" "1" "b" "2"\r\n+1.0 [0 c:1] "del" "z"\r\n', out)
    assert sorted(out.counts) == [b"a", b"b"]


def test_connections_that_name_themselves_cachetop_are_left_out_from_then_on() -> None:
    data = (
        b'+1.0 [0 10.0.0.1:7] "GET" "before"\r\n'
        b'+1.0 [0 10.0.0.1:7] "CLIENT" "SETNAME" "cachetop-probe"\r\n'
        b'+1.0 [0 10.0.0.1:7] "GET" "after"\r\n'
        b'+1.0 [0 10.0.0.2:8] "hello" "3" "SETNAME" "cachetop"\r\n'
        b'+1.0 [0 10.0.0.2:8] "GET" "after"\r\n'
        b'+1.0 [0 10.0.0.3:9] "client" "setname" "webapp"\r\n'
        b'+1.0 [0 10.0.0.3:9] "GET" "theirs"\r\n'
    )
    out = ParseResult()
    MonitorParser().feed(data, out)
    assert sorted(out.counts) == [b"before", b"theirs"]
    assert out.own == 2


def test_own_lines_a_naming_line_and_empty_keys_in_one_chunk() -> None:
    data = (
        b'+1.0 [0 10.0.0.1:1] "GET" "a"\r\n'
        b'+1.0 [0 10.0.0.9:9] "GET" "mine"\r\n'  # ours from the start
        b'+1.0 [0 10.0.0.2:2] "client" "setname" "cachetop-x"\r\n'
        b'+1.0 [0 10.0.0.2:2] "GET" "later-ours"\r\n'
        b'+1.0 [0 10.0.0.3:3] "GET" ""\r\n'  # the empty key is a key like any other
        b'+1.0 [0 10.0.0.3:3] "PUBLISH" "chan" "setname cachetop"\r\n'  # not a naming command
        b'+1.0 [0 10.0.0.3:3] "SET" "b" "1"\r\n'
    )
    out = ParseResult()
    parser = MonitorParser(own_clients=[b"10.0.0.9:9"])
    parser.feed(data, out)
    assert {k: v[0] for k, v in out.counts.items()} == {b"a": 1, b"": 1, b"b": 1}
    assert (out.lines, out.own, out.keyed) == (7, 2, 3)
    assert out.reads == [(b"a", b"10.0.0.1:1"), (b"", b"10.0.0.3:3")]
    assert out.writes == [(b"b", b"10.0.0.3:3")]
    assert parser.own_clients == {b"10.0.0.9:9", b"10.0.0.2:2"}
    # the same lines without the naming one take the fast path: same counts, same pairs
    fast = ParseResult()
    MonitorParser(own_clients=[b"10.0.0.9:9"]).feed(
        b"".join(line + b"\r\n" for line in data.split(b"\r\n") if line and b"client" not in line), fast
    )
    assert {k: v[0] for k, v in fast.counts.items()} == {b"a": 1, b"later-ours": 1, b"": 1, b"b": 1}
    assert (b"", b"10.0.0.3:3") in fast.reads

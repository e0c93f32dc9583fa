"""Parsing Redis 8.6 / Valkey 9.2 HOTKEYS replies. Neither server is installed here, so the replies
are the documented shapes (redis.io HOTKEYS GET example; valkey.io HOTKEYS GET); detection on a
server without HOTKEYS is tested against a real redis-server 7.0 in the integration tests."""

import pytest

from cachetop.hotkeys.server_hotkeys import (
    hotkeys_flavour,
    parse_redis_hotkeys_get,
    parse_valkey_hotkeys_get,
)


def test_flavour_from_command_docs() -> None:
    redis_docs = [
        b"hotkeys",
        [b"summary", b"...", b"subcommands", [b"hotkeys|start", [], b"hotkeys|get", []]],
    ]
    valkey_docs = {b"hotkeys": {b"subcommands": {b"hotkeys|get": {}, b"hotkeys|reset": {}}}}
    assert hotkeys_flavour(redis_docs) == "redis"
    assert hotkeys_flavour(valkey_docs) == "valkey"
    assert hotkeys_flavour([]) is None  # Redis 7.0: unknown command -> empty reply


def test_redis_hotkeys_get_resp2() -> None:
    reply = [
        b"tracking-active", 1, b"sample-ratio", 1, b"selected-slots", [],
        b"all-commands-all-slots-us", 220, b"net-bytes-all-commands-all-slots", 200,
        b"collection-start-time-unix-ms", 1769420604522, b"collection-duration-ms", 6408,
        b"by-cpu-time-us", [b"x", 104, b"y", 98, b"z", 18],
    ]  # fmt: skip
    got = parse_redis_hotkeys_get(reply)
    assert got is not None
    assert (got.unit, got.active, got.duration_s) == ("cpu_us", True, 6.408)
    assert [(k.key, k.value) for k in got.keys] == [(b"x", 104.0), (b"y", 98.0), (b"z", 18.0)]
    assert got.keys[0].share == pytest.approx(104 / 220)
    assert parse_redis_hotkeys_get([]) is None


def test_redis_hotkeys_get_by_net_only_resp3_map() -> None:
    reply = {
        "tracking-active": 0,
        "net-bytes-all-commands-all-slots": 1000,
        "by-net-bytes": {b"a": 600, b"b": 400},
    }
    got = parse_redis_hotkeys_get(reply)
    assert got is not None
    assert got.unit == "net_bytes"
    assert [(k.key, k.share) for k in got.keys] == [(b"a", 0.6), (b"b", 0.4)]


def test_valkey_hotkeys_get_resp2_and_resp3() -> None:
    resp2 = [[b"key", b"cold", b"db", 0, b"qps", b"10"], [b"key", b"hot", b"db", 1, b"qps", b"30"]]
    resp3 = [{b"key": b"cold", b"db": 0, b"qps": 10.0}, {b"key": b"hot", b"db": 1, b"qps": 30.0}]
    for reply in (resp2, resp3):
        got = parse_valkey_hotkeys_get(reply)
        assert got.unit == "qps"
        assert [(k.key, k.value, k.db, k.share) for k in got.keys] == [
            (b"hot", 30.0, 1, 0.75),
            (b"cold", 10.0, 0, 0.25),
        ]
    assert parse_valkey_hotkeys_get([]).keys == ()

"""`hotkeys --advice` sizes the hottest keys without walking a big collection on the server."""

from __future__ import annotations

import redis as redis_py

from cachetop.commands.hotkeys_advice import CountedSide, NodeRun, size_values
from cachetop.engine.config import InstanceConfig
from cachetop.engine.targets import parse_target
from cachetop.hotkeys.view import HotKey, HotKeysView
from cachetop.servers import LocalServer

MEMBERS = 50_000


async def test_a_hot_collection_is_sized_from_a_sample_not_walked(redis: LocalServer) -> None:
    r = redis_py.Redis(port=redis.port)
    pipe = r.pipeline(transaction=False)
    for start in range(0, MEMBERS, 5_000):
        pipe.sadd("leaderboard", *(f"player:{n}" for n in range(start, start + 5_000)))
    pipe.set("plain", b"v" * 100)
    pipe.execute()
    r.config_set("slowlog-log-slower-than", 0)  # every command, with its arguments
    r.slowlog_reset()
    inst = InstanceConfig(name="r", target=parse_target(redis.url))
    side = CountedSide(inst, 2.0)
    hot = tuple(HotKey(k, k.decode(), 100, 10.0, 0.5, reads=100) for k in (b"leaderboard", b"plain"))
    view = HotKeysView("r", "monitor", "ops", "sampling", keys=hot)
    node = NodeRun("r", inst, collector=None, side=side, view=view)  # type: ignore[arg-type]
    try:
        await size_values(node)
    finally:
        await side.shut()
    sent = sorted(e["command"] for e in r.slowlog_get(128) if e["command"].startswith(b"MEMORY"))
    assert sent == [b"MEMORY USAGE leaderboard", b"MEMORY USAGE plain"]  # no SAMPLES 0
    assert node.value_sizes == {
        b"leaderboard": r.memory_usage("leaderboard"),
        b"plain": r.memory_usage("plain"),
    }
    assert node.value_sizes[b"leaderboard"] > MEMBERS * 10  # the estimate is of the whole set

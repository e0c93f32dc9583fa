"""Keyspace analysis against real servers: a million keys in five prefixes (estimates against the
exact MEMORY USAGE sum), an expiry cliff among half a million TTLs (and an alert rule on
expiry_cliff_keys that fires), and doing no harm (counters net of our reads, idle time, config).

The samples are drawn with a fixed --seed so a run is repeatable; that the 95% intervals cover
the truth about 95% of the time over many draws is tested on plain numbers
(tests/unit/test_keyspace_estimate.py)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
import redis as redispy
import zstandard

from cachetop.analysis.keyspace import OwnCounts, analyse_instance, save_report
from cachetop.analysis.keyspace.redis_walk import KEYS_PER_BATCH
from cachetop.engine.config import InstanceConfig
from cachetop.engine.targets import parse_target
from cachetop.servers import LocalServer
from tests.alert_servers import SlackStandIn
from tests.conftest import until
from tests.keyspace_data import five_prefixes, memory_usage, pipe_into_redis, resp

SEED = 14


def inst_of(server: LocalServer, name: str = "cache-1") -> InstanceConfig:
    return InstanceConfig(name=name, target=parse_target(server.url))


def zstd_ratio(values: list[bytes]) -> float:
    c = zstandard.ZstdCompressor(level=3)
    return sum(map(len, values)) / sum(len(c.compress(v)) for v in values)


@pytest.mark.slow
async def test_a_million_keys_per_prefix_within_the_stated_error(redis: LocalServer) -> None:
    spec, commands = five_prefixes()
    pipe_into_redis(redis.port, commands)
    del commands
    exact = {pattern: memory_usage(redis.port, p.keys) for pattern, p in spec.items()}

    report = (await analyse_instance(inst_of(redis), sample=10_000, rate=0, seed=SEED)).to_json()

    assert (report["keys_total"], report["keys_scanned"], report["complete"]) == (1_000_000, 1_000_000, True)
    assert report["keys_sampled"] == 10_000
    by = {p["prefix"]: p for p in report["prefixes"]}
    assert set(by) == set(spec)
    for pattern, prefix in spec.items():
        got, keys, truth = by[pattern], len(prefix.keys), exact[pattern]
        assert abs(got["keys_est"] - keys) <= 0.01 * keys, pattern
        assert abs(got["bytes_est"] - truth) <= 0.05 * truth, (pattern, got["bytes_est"], truth)
        lo, hi = got["bytes_ci95"]
        assert lo <= truth <= hi, (pattern, lo, truth, hi)
    assert by["cfg:*"]["ttl"]["none"] == 100_000 and by["cfg:*"]["types"] == {"hash": 100_000}
    assert by["user:*:profile"]["ttl"]["longer"] == 150_000  # 2 days
    assert by["rate:*"]["ttl"]["none"] == 0
    json_prefix = by["user:*:profile"]["compress"]
    truth = zstd_ratio(spec["user:*:profile"].values)
    assert abs(json_prefix["zstd_ratio"] - truth) <= 0.05 * truth, (json_prefix["zstd_ratio"], truth)
    assert json_prefix["recommend"] is True
    assert by["blob:*"]["compress"]["recommend"] is False
    assert by["cfg:*"]["compress"] is None and report["values"]["skipped_types"]["hash"] > 0


def cliff_keyspace(at: int) -> list[bytes]:
    """500,000 sess:* keys with TTLs spread over an hour and 50,000 promo:* keys expiring at `at`."""
    out = [resp(b"SET", b"sess:%d" % i, b"v", b"EX", b"%d" % (120 + i % 3480)) for i in range(500_000)]
    out += [resp(b"SET", b"promo:%d" % i, b"p", b"EXAT", b"%d" % at) for i in range(50_000)]
    return out


def alert_config(tmp_path: Path, server: LocalServer, webhook: str) -> Any:
    from cachetop.engine.config import load_config

    path = tmp_path / "cachetop.toml"
    path.write_text(
        f"""
[settings]
interval = "200ms"
window = "1s"
state_dir = "{tmp_path / "state"}"

[[instance]]
name = "cache-1"
url = "{server.url}"

[alerts]
instance_down = false

[[rule]]
name = "expiry-cliff"
metric = "expiry_cliff_keys"
op = ">"
threshold = 10000
channels = ["ops"]

[channel.ops]
type = "slack"
webhook_url = "{webhook}"
"""
    )
    return load_config(path)


@pytest.mark.slow
async def test_an_expiry_cliff_is_named_and_its_alert_fires(
    redis: LocalServer, slack: SlackStandIn, tmp_path: Path
) -> None:
    at = int(time.time()) + 300
    pipe_into_redis(redis.port, cliff_keyspace(at))

    report = (await analyse_instance(inst_of(redis), sample=10_000, rate=0, seed=SEED)).to_json()

    cliff = report["cliffs"][0]
    assert abs(cliff["at"] - at) <= 1
    assert abs(cliff["keys_est"] - 50_000) <= 5_000, cliff
    assert cliff["prefixes"] == ["promo:*"]
    assert "jitter" in cliff["advice"] and "XFetch" in cliff["advice"]

    # The daemon's path: the saved report gives expiry_cliff_keys, the rule fires, Slack hears it.
    from cachetop.commands.daemon import serve

    config = alert_config(tmp_path, redis, slack.webhook_url)
    save_report(config.settings.state_dir, report)
    stop = asyncio.Event()
    daemon = asyncio.create_task(serve(config, stop))
    try:
        await until(lambda: slack.delivered, 20.0, "the expiry-cliff alert in Slack")
    finally:
        stop.set()
        await asyncio.wait_for(daemon, 10)
    text = str(slack.delivered[0].body)
    assert "expiry-cliff" in text and "expiry_cliff_keys" in text


def stats(client: Any) -> tuple[int, int, int, int]:
    info = client.info("stats")
    return (
        info["keyspace_hits"],
        info["keyspace_misses"],
        info["total_commands_processed"],
        info.get("total_error_replies", 0),
    )


@pytest.mark.parametrize("flavour", ["redis", "valkey"])
async def test_an_analysis_does_no_harm(flavour: str, request: pytest.FixtureRequest) -> None:
    server: LocalServer = request.getfixturevalue(flavour)
    client = redispy.Redis(port=server.port)
    _spec, commands = five_prefixes(scale=0.02)
    pipe_into_redis(server.port, commands)
    client.set("canary", "a string value that is read for compression if anything is")
    config_before = client.config_get("*")
    await until(lambda: client.object("idletime", "canary") >= 2, 10.0, "the canary to sit idle 2 s")
    idle_before = client.object("idletime", "canary")
    # Redis 7.0 has no CLIENT NO-TOUCH: reading values there would refresh them, so none are read.
    values = 200 if flavour == "valkey" else 0
    own = OwnCounts()
    seen_connections: list[int] = []

    def progress(_p: Any) -> None:
        clients = client.client_list()
        seen_connections.append(sum(c["name"].startswith("cachetop-keyspace") for c in clients))

    before = stats(client)
    started = time.monotonic()
    report = await analyse_instance(
        inst_of(server), sample=2_000, rate=0, values_per_prefix=values, own=own, progress=progress
    )
    elapsed = time.monotonic() - started
    after = stats(client)

    assert report.error is None and report.keys_sampled == 2_000
    assert report.prefixes and all(p.sampled for p in report.prefixes)
    # Hits and misses moved by exactly what we counted as ours, and every command was counted
    # (each progress call above sent one CLIENT LIST, and the second INFO counts the first).
    assert (after[0] - before[0], after[1] - before[1]) == (own.hits(), own.misses())
    assert own.hits() > 0
    assert after[2] - before[2] == sum(own.commands().values()) + len(seen_connections) + 1
    assert after[3] == before[3]  # no error reply
    idle_after = client.object("idletime", "canary")
    assert idle_after >= idle_before + int(elapsed) - 1 and idle_after >= idle_before
    assert client.config_get("*") == config_before
    assert max(seen_connections) == 1 and own.connections() == 0
    assert sum(c["name"].startswith("cachetop-keyspace") for c in client.client_list()) == 0
    if flavour == "valkey":
        assert report.values["no_touch"] is True and report.values["read"] > 0
    client.close()


async def test_a_stopped_walk_still_answers_and_always_closes_its_connection(redis: LocalServer) -> None:
    pipe_into_redis(
        redis.port, [resp(b"SET", b"%s:%d" % (b"kj"[i % 2 : i % 2 + 1], i), b"v") for i in range(20_000)]
    )
    client = redispy.Redis(port=redis.port)

    def ours() -> int:
        return sum(c["name"].startswith("cachetop-keyspace") for c in client.client_list())

    # A cancel during the scan: the names seen so far are sampled and scaled, with an interval.
    cancel = asyncio.Event()

    def stop_early(p: Any) -> None:
        if p.phase == "scanning" and p.keys_scanned >= 2_000:
            cancel.set()

    report = await analyse_instance(inst_of(redis), sample=500, rate=0, progress=stop_early, cancel=cancel)
    assert not report.complete and 2_000 <= report.keys_scanned < 20_000 and report.keys_sampled == 500
    for prefix in report.prefixes:  # k:* and j:*, 10,000 each
        lo, hi = prefix.keys.to_json()
        # Redis seeds its hash per process, so the part walked differs from run to run: 95%
        # coverage is tested on plain numbers; here the truth must lie within 3 half-widths.
        assert lo < hi and lo - (hi - lo) <= 10_000 <= hi + (hi - lo)
    assert ours() == 0

    # Cancelled outright (a second Ctrl-C, a closed tab): the connection goes too.
    task = asyncio.create_task(analyse_instance(inst_of(redis), sample=500, rate=2_000))
    await until(lambda: ours() == 1, 10.0, "the walk's connection")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: ours() == 0, 5.0, "the connection to close")
    client.close()


async def test_under_an_lfu_policy_the_walk_reads_frequencies(make_redis: Any) -> None:
    server = make_redis("--maxmemory-policy", "allkeys-lfu")
    pipe_into_redis(server.port, [resp(b"SET", b"k:%d" % i, b"v") for i in range(1_000)])
    client = redispy.Redis(port=server.port)
    for _ in range(50):
        client.get("k:7")  # k:7 gets a high LFU counter
    own = OwnCounts()
    before = stats(client)
    report = await analyse_instance(inst_of(server), sample=1_000, rate=0, own=own, values_per_prefix=0)
    after = stats(client)
    (prefix,) = report.prefixes
    assert (report.idle_source, prefix.idle, report.error) == ("freq", None, None)
    assert sum(prefix.freq.values()) == 1_000 and prefix.freq["6-15"] == 1 and prefix.freq["5"] == 999
    assert after[3] == before[3]  # OBJECT IDLETIME would have been an error reply under LFU
    assert (after[0] - before[0], after[1] - before[1]) == (own.hits(), own.misses())
    client.close()


async def test_a_walk_stopped_early_resumes_where_it_stopped(redis: LocalServer) -> None:
    from cachetop.analysis.keyspace.redis_walk import KeyspaceWalk

    pipe_into_redis(redis.port, [resp(b"SET", b"r:%d" % i, b"v") for i in range(20_000)])
    cancel = asyncio.Event()
    walk = KeyspaceWalk(
        inst_of(redis),
        sample=300,
        rate=0,
        cancel=cancel,
        progress=lambda p: cancel.set() if p.phase == "scanning" and p.keys_scanned >= 5_000 else None,
    )
    first = await walk.run()
    assert not first.complete and first.keys_scanned < 20_000
    walk.progress = lambda _p: None
    second = await walk.run()  # the SCAN goes on from its cursor: no name is counted twice
    assert second.complete and second.keys_scanned == 20_000
    assert [p.keys.est for p in second.prefixes] == [20_000]


def test_another_cachetop_process_leaves_our_reads_out(redis: LocalServer, tmp_path: Path) -> None:
    """What a dashboard in another process sees: each CLIENT LIST (with INFO in the same write)
    takes out the commands and keyspace hits the walk's client name claims (backends/viewers.py)."""
    import subprocess
    import sys
    import threading

    from cachetop.backends.viewers import ViewerTally, parse_client_list

    pipe_into_redis(redis.port, [resp(b"SET", b"s:%d" % i, b"v") for i in range(20_000)])
    client = redispy.Redis(port=redis.port)
    tally, raw_hits, gaps = ViewerTally(), [], []
    stop = threading.Event()

    def listing() -> None:
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("CLIENT", "LIST")
        pipe.info("stats")
        listed, info = pipe.execute()
        tally.update(parse_client_list(listed), continuous=True)
        raw_hits.append(info["keyspace_hits"])
        gaps.append(info["keyspace_hits"] - raw_hits[0] - tally.hits)

    def poll() -> None:
        while not stop.is_set():
            listing()
            stop.wait(0.02)

    listing()  # the baseline, before the walk connects
    thread = threading.Thread(target=poll)
    thread.start()
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path)}
    argv = [sys.executable, "-m", "cachetop", "keyspace", "--json", "--sample", "2000", "--values", "0"]
    try:
        done = subprocess.run([*argv, redis.url], capture_output=True, text=True, env=env, timeout=60)
    finally:
        stop.set()
        thread.join(10)
    assert done.returncode == 0, done.stderr
    listing()
    lookups = 4 * 2_000
    assert raw_hits[-1] - raw_hits[0] == lookups  # PTTL, TYPE, OBJECT ENCODING, OBJECT IDLETIME
    # Claimed ahead (at most one batch of KEYS_PER_BATCH keys, 4 lookups each), and settled:
    # the connection stays a second after its last name, so this listing saw it.
    assert all(-4 * KEYS_PER_BATCH <= gap <= 0 for gap in gaps), [g for g in gaps if g]
    assert gaps[-1] == 0 and tally.hits == lookups and tally.misses == 0
    client.close()


async def test_big_collections_are_not_walked_element_by_element(redis: LocalServer) -> None:
    client = redispy.Redis(port=redis.port)
    client.hset("h:mid", mapping={f"f{i}": i for i in range(2_000)})  # hashtable, ~100 KB
    pipe_into_redis(redis.port, [resp(b"HSET", b"h:big", b"f%d" % i, b"%d" % i) for i in range(100_000)])
    mid_exact = client.memory_usage("h:mid", samples=0)
    calls = client.info("commandstats")["cmdstat_memory|usage"]["calls"]

    report = await analyse_instance(inst_of(redis), sample=10, rate=0, values_per_prefix=0)

    sizes = {f.key: f.bytes for p in report.prefixes for f in p.biggest}
    assert sizes[b"h:mid"] == mid_exact  # sized whole: SAMPLES 0 on a collection under 1 MiB
    assert sizes[b"h:big"] > 1 << 20  # left at its 5-element estimate
    assert any(
        "1 sampled collection over 1 MiB was sized from 5 of their elements" in n for n in report.notes
    )
    # Two MEMORY USAGE calls (the estimate, then SAMPLES 0) for h:mid, one for h:big.
    assert client.info("commandstats")["cmdstat_memory|usage"]["calls"] - calls == 3
    client.close()

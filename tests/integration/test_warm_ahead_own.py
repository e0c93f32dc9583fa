"""A scheduled warm-ahead is cachetop's own traffic: across a warm that writes keys, an idle
Redis still reads 0 ops/s in every snapshot (the warm's ~4 commands a key are reported to the
poller's backend and sent while no poll's INFO runs)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path

import redis as redis_py

from cachetop.engine.config import load_config
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.history.bucket import BucketRecord
from cachetop.history.store import HistoryStore
from cachetop.model import Snapshot
from cachetop.servers import LocalServer
from tests.integration.test_warm_ahead import warm_ahead_config

BUCKET_S, SEASON, KEYS = 3.0, 3, 40
WINDOW_S = 1.0


def key(n: int) -> bytes:
    return f"pred:{n}".encode()


def write_config(tmp_path: Path, port: int) -> Path:
    values = tmp_path / "values.jsonl"
    values.write_text(
        "".join(json.dumps({"key": key(n).decode(), "value": f"v{n}"}) + "\n" for n in range(KEYS))
    )
    return warm_ahead_config(
        tmp_path,
        port,
        values,
        interval="0.2s",
        window=f"{WINDOW_S:g}s",
        lead="1s",
        top=KEYS,
        bucket_s=BUCKET_S,
        season=SEASON,
    )


def seed_history(config_path: Path) -> None:
    """Two learned days in which the same KEYS keys were hot in every bucket."""
    config = load_config(config_path)
    settings = config.sections["history"]
    store = HistoryStore(config.settings.state_dir, settings, writable=True)
    now = math.floor(time.time() / BUCKET_S)
    hot = tuple((key(n), 1000 - n) for n in range(KEYS))
    store.add_many(
        [
            BucketRecord(
                "shop",
                i,
                BUCKET_S,
                keys=hot,
                prefixes=((b"pred", 40_000),),
                events=40_000,
                covered_s=BUCKET_S,
            )
            for i in range(now - 2 * SEASON, now)
        ]
    )
    store.close()


async def test_a_scheduled_warm_leaves_an_idle_server_at_zero_ops(tmp_path: Path, redis: LocalServer) -> None:
    path = write_config(tmp_path, redis.port)
    seed_history(path)
    config = load_config(path)
    seen: list[tuple[float, float | None]] = []  # (monotonic, ops/s) of every snapshot
    loop = asyncio.get_running_loop()
    async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
        mon.subscribe(lambda s: seen.append((loop.time(), s.instances[0].metrics["ops_per_sec"])))
        history = live.history
        assert history is not None and history.writer

        def warmed(_s: Snapshot) -> bool:
            return any(r.written for _n, _t, r in history.warm_results)

        await mon.wait_snapshot(warmed, 3 * BUCKET_S + 5)
        done_at = loop.time()
        # Every window that holds a piece of the warm, and one more.
        await mon.wait_snapshot(lambda s: loop.time() > done_at + WINDOW_S + 0.5 and len(seen) > 10, 10)
    results = [r for _n, _t, r in history.warm_results]
    first = next(r for r in results if r.written)
    assert (first.planned, first.written, first.failed, first.error) == (KEYS, KEYS, 0, None)
    # The server did take the warm: every predicted key with the file's value (TTL 2 buckets).
    client = redis_py.Redis(port=redis.port)
    assert client.mget([key(n) for n in range(KEYS)]) == [f"v{n}".encode() for n in range(KEYS)]
    stats = client.info("commandstats")
    client.close()
    assert stats["cmdstat_memory|usage"]["calls"] >= KEYS
    rated = [ops for _t, ops in seen if ops is not None]
    assert len(rated) >= 10, seen
    assert set(rated) == {0.0}, seen

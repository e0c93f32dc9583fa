"""Warming ahead of a daily cycle, compressed in time, on real Redis servers.

A day is 6 buckets of 2 s. In bucket j of the day, the application reads 100 keys of one page
(`page:<name_j>:<n>`), cache-aside (GET, on a miss SET with a 3 s TTL), plus 5% reads of random
keys no one can predict. Server A runs `cachetop daemon` with history and `[warm] predict`;
server B gets the very same reads and no cachetop. On the third day, the hit ratio of the first
0.75 s of each bucket, from the servers' keyspace_hits/misses, is compared.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import random
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from cachetop.commands.daemon import serve
from cachetop.engine.config import load_config
from cachetop.history.store import HistoryStore

BUCKET_S, SEASON = 2.0, 6
PAGES = ("home", "search", "cart", "checkout", "news", "sports")
HOT = 100
RATE = 600  # reads per second per server
FIRST_PART_S = 0.5
NOISE = 0.05


def value_of(key: str) -> str:
    return f"value of {key}"  # what the application's database holds, and the file gives


def hot_key(index: int, n: int) -> str:
    return f"page:{PAGES[index % SEASON]}:{n}"


def application(port: int, until: float, seed: int, out: str) -> None:
    """The cache-aside client (its own process, like a real application); reads INFO stats at the
    start of each bucket and after FIRST_PART_S, and writes them to `out` as JSON."""
    marks: dict[int, list[tuple[int, int]]] = {}
    r = redis.Redis(port=port, socket_timeout=5)
    rng = random.Random(seed)
    step = 1.0 / RATE
    due = time.time()
    marked: tuple[int, int] | None = None  # (bucket, marks taken)

    def mark(index: int) -> None:
        stats = r.info("stats")
        marks.setdefault(index, []).append((stats["keyspace_hits"], stats["keyspace_misses"]))

    while (now := time.time()) < until:
        index = math.floor(now / BUCKET_S)
        into = now - index * BUCKET_S
        if marked is None or marked[0] != index:
            if into < 0.15:  # a busy machine may start the bucket a little late
                mark(index)
                marked = (index, 1)
            else:
                marked = (index, 2)  # joined the bucket late: not measured
        elif marked[1] == 1 and into >= FIRST_PART_S:
            mark(index)
            marked = (index, 2)
        if rng.random() < NOISE:
            key = f"page:misc:{rng.randrange(10**6)}"
        else:
            key = hot_key(index, rng.randrange(HOT))
        if r.get(key) is None:
            r.set(key, value_of(key), px=3000)
        due += step
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)  # pacing the workload, not waiting for a condition
    r.close()
    Path(out).write_text(json.dumps({str(k): v for k, v in marks.items()}))


def run_application(port: int, until: float, seed: int, out: Path) -> dict[int, list[tuple[int, int]]]:
    process = multiprocessing.get_context("spawn").Process(
        target=application, args=(port, until, seed, str(out))
    )
    process.start()
    process.join(until - time.time() + 30)
    assert process.exitcode == 0, "the application process failed"
    return {int(k): [tuple(m) for m in v] for k, v in json.loads(out.read_text()).items()}


def ratio(marks: list[tuple[int, int]]) -> float | None:
    if len(marks) < 2:
        return None
    hits = marks[1][0] - marks[0][0]
    misses = marks[1][1] - marks[0][1]
    return 100.0 * hits / (hits + misses) if hits + misses else None


def write_config(tmp_path: Path, port: int) -> Path:
    values = tmp_path / "values.jsonl"
    with values.open("w") as fh:
        for index in range(SEASON):
            for n in range(HOT):
                key = hot_key(index, n)
                fh.write(json.dumps({"key": key, "value": value_of(key)}) + "\n")
    return warm_ahead_config(
        tmp_path,
        port,
        values,
        interval="0.25s",
        window="2s",
        lead="0.6s",
        top=HOT,
        bucket_s=BUCKET_S,
        season=SEASON,
    )


def warm_ahead_config(
    tmp_path: Path,
    port: int,
    values: Path,
    *,
    interval: str,
    window: str,
    lead: str,
    top: int,
    bucket_s: float,
    season: int,
) -> Path:
    """A config file: one Redis "shop" sampled by MONITOR, history in buckets of `bucket_s`, and
    warm-ahead from the `values` file (JSON lines of key and value), `lead` before each bucket."""
    path = tmp_path / "cachetop.toml"
    path.write_text(
        f"""
[settings]
interval = "{interval}"
window = "{window}"
state_dir = "{tmp_path / "state"}"

[[instance]]
name = "shop"
url = "redis://127.0.0.1:{port}"
hotkeys = "monitor"

[hotkeys]
monitor_on = "1s"
monitor_off = "0s"

[history]
bucket = "{bucket_s:g}s"
season = {season}

[warm]
predict = true
lead = "{lead}"
strategy = "file"
options = {{ path = "{values}" }}
top = {top}
"""
    )
    return path


@pytest.mark.slow
def test_predictive_warming_lifts_the_hit_ratio_at_bucket_starts(tmp_path: Path, make_redis: Any) -> None:
    warmed, cold = make_redis(), make_redis()
    config = load_config(write_config(tmp_path, warmed.port))
    start = time.time()
    first_full = math.floor(start / BUCKET_S) + 1
    third_day = range(first_full + 2 * SEASON, first_full + 3 * SEASON)
    until = (third_day[-1] + 1) * BUCKET_S
    marks: dict[str, dict[int, list[tuple[int, int]]]] = {"on": {}, "off": {}}

    async def main() -> None:
        stop = asyncio.Event()
        daemon = asyncio.create_task(serve(config, stop))
        marks["on"], marks["off"] = await asyncio.gather(
            asyncio.to_thread(run_application, warmed.port, until, 7, tmp_path / "on.json"),
            asyncio.to_thread(run_application, cold.port, until, 7, tmp_path / "off.json"),
        )
        store = HistoryStore(config.settings.state_dir, config.sections["history"], writable=False)
        deadline = time.monotonic() + 15
        while third_day[-1] not in store.buckets("shop", BUCKET_S, since=third_day[-1]):
            assert time.monotonic() < deadline, "the last bucket of day three was never closed"
            await asyncio.sleep(0.05)
        store.close()
        stop.set()
        assert await daemon == 0

    asyncio.run(main())

    on = [ratio(marks["on"].get(i, [])) for i in third_day]
    off = [ratio(marks["off"].get(i, [])) for i in third_day]
    pairs = [(a, b) for a, b in zip(on, off, strict=True) if a is not None and b is not None]
    assert len(pairs) >= SEASON - 2, (on, off)
    mean_on = sum(a for a, _ in pairs) / len(pairs)
    mean_off = sum(b for _, b in pairs) / len(pairs)
    print(
        f"\nfirst {FIRST_PART_S}s of each bucket, day 3: hit ratio {mean_on:.1f}% warmed,"
        f" {mean_off:.1f}% cold"
    )
    assert mean_on - mean_off >= 20.0, (on, off)

    store = HistoryStore(config.settings.state_dir, config.sections["history"], writable=False)
    scored = store.precision("shop", BUCKET_S)
    store.close()
    day3 = {p: [v for i, v in values if i in third_day] for p, values in scored.items()}
    means = {p: sum(v) / len(v) for p, v in day3.items() if v}
    print("precision@100 on day 3: " + ", ".join(f"{p} {m:.2f}" for p, m in sorted(means.items())))
    assert len(day3["combined"]) >= SEASON - 1
    assert means["combined"] >= 0.8, means
    assert means["naive"] < 0.2, means  # the hot set moves every bucket: the baseline cannot follow

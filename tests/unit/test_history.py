"""History: the SQLite store under its size cap across a simulated month, restarts (a SIGKILL in the
middle of a bucket loses no closed bucket), one writer per state dir, and the [history] section."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachetop.engine.config import load_config, parse_config
from cachetop.engine.configfile import ConfigContext, ConfigError
from cachetop.history.bucket import BucketRecord
from cachetop.history.config import HistorySettings
from cachetop.history.service import HistoryService
from cachetop.history.store import HistoryStore, pack, unpack
from cachetop.metrics.topk import WindowedTopK
from cachetop.model import InstanceMetrics, Snapshot, Status

HOUR = 3600.0
PREDICTORS = ("combined", "seasonal", "sequence", "naive")


def record(instance: str, index: int, bucket_s: float = HOUR, keys: int = 200) -> BucketRecord:
    # key names that do not compress away, like real ids
    names = [
        f"user:{hashlib.sha1(f'{instance}{index}{n}'.encode()).hexdigest()[:16]}:cart".encode()
        for n in range(keys)
    ]
    return BucketRecord(
        instance,
        index,
        bucket_s,
        tuple((k, 1000 - n) for n, k in enumerate(names)),
        ((b"user:*:cart", 100_000),),
        {"hits": 900.0, "misses": 100.0, "commands": 5000.0},
        events=100_000,
        covered_s=bucket_s / 10,
    )


def test_pack_round_trips_and_skips_keys_too_long_to_keep() -> None:
    lists = [[(b"a", 3), (b"\x00\xff", 2**32 + 5), (b"x" * 2000, 1)], []]
    assert unpack(pack(lists)) == [((b"a", 3), (b"\x00\xff", 2**32 - 1)), ()]


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs where there is one: 720 commits, each with its fsyncs, took 25 s on a
    busy disk; the size arithmetic is the same on any file system."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="cachetop-history-", dir=shm))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_month_of_buckets_stays_under_the_cap_oldest_dropped_first(fast_dir: Path) -> None:
    tmp_path = fast_dir
    cap = 384 * 1024  # a season of two instances with their predictions, and then some
    now = [1_800_000_000.0]
    settings = HistorySettings(bucket=2 * HOUR, season=12, max_bytes=cap)
    store = HistoryStore(tmp_path, settings, clock=lambda: now[0])
    first = int(now[0] // settings.bucket)
    month = 30 * 12
    for step in range(month):
        index = first + step
        now[0] = (index + 1) * settings.bucket  # the bucket has just closed
        for instance in ("cache-a", "cache-b"):
            store.add(record(instance, index, settings.bucket))
            assert os.path.getsize(store.path) <= cap
            assert store.size_bytes() <= cap
            # what the service stores next: the four predictors' top 100 for the coming bucket
            ahead = [k for k, _ in record(instance, index + 1, settings.bucket, keys=100).keys]
            store.put_predictions([(instance, settings.bucket, index + 1, dict.fromkeys(PREDICTORS, ahead))])
            assert os.path.getsize(store.path) <= cap
            assert store.size_bytes() <= cap
    last = first + month - 1
    for instance in ("cache-a", "cache-b"):
        kept = store.buckets(instance, settings.bucket)
        # the newest ones, with no hole: the oldest went first
        assert sorted(kept) == list(range(last - len(kept) + 1, last + 1))
        assert len(kept) >= settings.season  # a day to compare with, at least
        assert kept[last].keys == record(instance, last, settings.bucket).keys
    per_bucket = cap / (2 * len(store.buckets("cache-a", settings.bucket)))
    assert 1000 < per_bucket < 40_000  # ~200 keys and 4 x 100 predicted: a few KB each (docs/trends.md)
    # Predictions went with their buckets, oldest first: those kept are for the buckets kept and
    # the next one, with no hole.
    assert store._conn() is not None
    predicted = sorted({row[0] for row in store._conn().execute("SELECT idx FROM prediction")})
    oldest_kept = min(store.buckets("cache-a", settings.bucket))
    assert predicted == list(range(predicted[0], last + 2))
    assert oldest_kept - 1 <= predicted[0] <= oldest_kept + 1
    store.close()


def test_retention_drops_buckets_older_than_it(tmp_path: Path) -> None:
    now = [100 * HOUR]
    store = HistoryStore(tmp_path, HistorySettings(retention=10 * HOUR), clock=lambda: now[0])
    for index in range(80, 100):
        store.add(record("a", index, keys=3))
    assert sorted(store.buckets("a", HOUR)) == list(range(90, 100))
    store.close()


def test_one_writer_per_state_dir_the_other_reads_and_takes_over(tmp_path: Path) -> None:
    config = parse_config({"settings": {"state_dir": str(tmp_path)}}, ConfigContext("x.toml", ""))
    daemon = HistoryService(config, {})
    dashboard = HistoryService(config, {})
    daemon.start()
    dashboard.start()
    assert daemon.writer and not dashboard.writer
    assert daemon.store is not None and dashboard.store is not None
    recent = int(time.time() // HOUR) - 1
    daemon.store.add(record("a", recent, keys=3))
    assert list(dashboard.store.buckets("a", HOUR)) == [recent]
    with pytest.raises(AssertionError):
        dashboard.store.add(record("a", recent + 1, keys=3))
    snapshot = Snapshot(time.time(), 1.0, ())
    dashboard.on_snapshot(snapshot)
    assert not dashboard.writer  # the daemon still holds it
    asyncio.run(daemon.stop())
    dashboard.on_snapshot(Snapshot(snapshot.time + 1, 1.0, ()))
    assert not dashboard.writer  # tried again only every 30 s
    dashboard.on_snapshot(Snapshot(snapshot.time + 31, 1.0, ()))
    assert dashboard.writer  # the daemon is gone: the dashboard keeps the history now
    dashboard.store.add(record("a", recent + 1, keys=3))
    assert list(dashboard.store.buckets("a", HOUR)) == [recent, recent + 1]
    asyncio.run(dashboard.stop())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[history]\nbucket = "1h"\nmax_bytes = "1KiB"\n', ":3: max_bytes must be at least 64KiB"),
        ("[history]\nseason = 0\n", ":2: season must be"),
        ('[history]\nbucket = "2x"\n', ":2: bucket: '2x' is not a duration"),
        ("[history]\nbuckets = 3\n", ":2: "),
        ("[warm]\npredict = true\n", ":2: predict = true needs a strategy"),
    ],
)
def test_history_and_warm_section_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}{message}")


# --- a service fed like the live one: collector slots and snapshots, on an injected clock -----------

BUCKET = 10.0
OFFSET = 5_000.0  # wall = monotonic + OFFSET


class Collector:
    """The collector's surface history reads (SlotSource): real WindowedTopK, an injected clock."""

    def __init__(self, clock: list[float]) -> None:
        self.keys = WindowedTopK(window_s=10.0)
        self.prefixes = WindowedTopK(window_s=10.0)
        self.clock = lambda: clock[0] - OFFSET


def feed(
    service: HistoryService, collector: Collector, wall: list[float], until: float, season: int | None = None
) -> None:
    """One event a second: key k<bucket>:<n> (n = 0..4), then a snapshot. With `season`, the
    bucket's number within the season names the keys: the same keys come back every season."""
    while wall[0] < until:
        index = int(wall[0] // BUCKET)
        name = index % season if season else index
        mono = wall[0] - OFFSET
        key = f"k{name}:{int(wall[0]) % 5}".encode()
        collector.keys.add(mono, key)
        collector.keys.cover(mono, 1.0)
        collector.prefixes.add(mono, f"k{name}:*".encode())
        total = int(wall[0])
        inst = InstanceMetrics(
            "a", "redis", "x", Status.UP, None, {}, counters={"hits": total, "misses": 0, "commands": total}
        )
        service.on_snapshot(Snapshot(wall[0], 1.0, (inst,)))
        wall[0] += 1.0


CHILD = textwrap.dedent(
    """
    import sys
    from tests.unit.test_history import BUCKET, Collector, feed, service_for
    wall = [1_000_000.0]
    collector = Collector(wall)
    service = service_for(sys.argv[1], collector, wall)
    save = service._write_closed  # on the history worker, once the transaction is committed
    def saved(records):
        save(records)
        for record in records:
            print("closed", record.index, flush=True)
    service._write_closed = saved
    feed(service, collector, wall, 1_000_000.0 + 4.5 * BUCKET)  # four buckets and a half
    service.flush()  # the closed ones are on disk (the worker writes them as they close)
    print("ready", flush=True)
    sys.stdin.readline()  # killed here, in the middle of a bucket
    """
)


def service_for(state_dir: str, collector: Collector, wall: list[float]) -> HistoryService:
    config = parse_config(
        {"settings": {"state_dir": state_dir}, "history": {"bucket": f"{BUCKET:g}s", "season": 3}},
        ConfigContext("x.toml", ""),
    )
    service = HistoryService(config, {"a": collector}, clock=lambda: wall[0])
    service.start()
    return service


def test_a_sigkill_mid_bucket_loses_no_closed_bucket_and_the_next_run_carries_on(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert child.stdout is not None
    closed = []
    for line in child.stdout:
        if line.startswith("ready"):
            break
        closed.append(int(line.split()[1]))
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    first = int(1_000_000.0 // BUCKET)
    # a bucket closes 1.25 s after its end (its last collector slot has finished): at +45 s, four have
    assert closed == [first, first + 1, first + 2, first + 3]
    wall = [1_000_000.0 + 4.5 * BUCKET]
    collector = Collector(wall)
    service = service_for(str(tmp_path), collector, wall)
    assert service.writer  # the dead process's lock went with it
    feed(service, collector, wall, 1_000_000.0 + 7 * BUCKET)
    service.flush()  # the worker's writes are done
    assert service.store is not None
    stored = service.store.buckets("a", BUCKET)
    assert sorted(stored) == [first, first + 1, first + 2, first + 3, first + 4, first + 5]
    for index in closed:  # whole: 10 events, 2 of each of the bucket's 5 keys
        assert sorted(stored[index].keys) == [(f"k{index}:{n}".encode(), 2) for n in range(5)]
        assert stored[index].prefixes == ((f"k{index}:*".encode(), 10),)
        # one hit per snapshot, counted from the second snapshot on (a delta needs two)
        assert stored[index].metrics["hits"] == (9.0 if index == first else 10.0)
    # the bucket open at the kill is kept only from the restart on (its first half died with the process)
    assert stored[first + 4].events == 5
    asyncio.run(service.stop())


def _started_service(tmp_path: Path, wall: list[float]) -> HistoryService:
    """A started history service with 10 s buckets, 3 a season, on the clock wall[0]."""
    config = parse_config(
        {"settings": {"state_dir": str(tmp_path)}, "history": {"bucket": "10s", "season": 3}},
        ConfigContext("x.toml", ""),
    )
    service = HistoryService(config, {}, clock=lambda: wall[0])
    service.start()
    return service


def test_a_source_with_no_stream_stores_its_last_ranking_of_the_bucket(tmp_path: Path) -> None:
    from cachetop.hotkeys.view import HotKey, HotKeysView, PrefixStat

    wall = [1_000_000.0]
    service = _started_service(tmp_path, wall)
    for step in range(13):
        rank = (b"early", 5) if step < 5 else (b"late", 9)  # LFU counters: a ranking, no events
        view = HotKeysView(
            "a",
            "lfu",
            "lfu_freq",
            "sampling",
            keys=(HotKey(rank[0], rank[0].decode(), rank[1], None, None),),
            prefixes=(PrefixStat(b"p:*", "p:*", 3, None, None),),
        )
        inst = InstanceMetrics(
            "a", "redis", "x", Status.UP, None, {}, extras={"hotkeys": view}, counters={"hits": step}
        )
        service.on_snapshot(Snapshot(wall[0], 1.0, (inst,)))
        wall[0] += 1.0
    service.flush()  # the worker's writes are done
    assert service.store is not None
    (stored,) = service.store.buckets("a", 10.0).values()
    assert stored.keys == ((b"late", 9),) and stored.prefixes == ((b"p:*", 3),) and stored.events == 0
    asyncio.run(service.stop())


def test_predictions_are_made_ahead_stored_and_scored_when_their_bucket_closes(tmp_path: Path) -> None:
    wall = [1_000_000.0]
    collector = Collector(wall)
    service = service_for(str(tmp_path), collector, wall)  # season 3 buckets of 10 s
    feed(service, collector, wall, 1_000_000.0 + 10 * BUCKET, season=3)
    service.flush()  # the worker's writes are done
    assert service.store is not None
    scored = service.store.precision("a", BUCKET)
    first = int(1_000_000.0 // BUCKET)
    day3 = range(first + 6, first + 9)
    # each prediction is made `lead` before its bucket (the default 2m, cut to half a bucket: 5 s)
    assert [v for i, v in scored["seasonal"] if i in day3] == [1.0, 1.0, 1.0]
    assert [v for i, v in scored["combined"] if i in day3] == [1.0, 1.0, 1.0]
    assert [v for i, v in scored["naive"] if i in day3] == [0.0, 0.0, 0.0]  # every bucket has new keys
    predicted = service.store.predicted_keys("a", BUCKET, first + 7, "combined")
    assert predicted is not None and sorted(predicted) == [
        f"k{(first + 7) % 3}:{n}".encode() for n in range(5)
    ]
    asyncio.run(service.stop())


def test_config_check_says_what_history_and_warming_ahead_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cachetop.cli import main

    path = tmp_path / "c.toml"
    path.write_text(
        '[history]\nbucket = "30m"\nseason = 48\nmax_bytes = "8MiB"\n\n'
        '[warm]\npredict = true\nlead = "5m"\nstrategy = "file"\noptions = { path = "v.jsonl" }\n'
    )
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "history: 30m buckets, season 48 buckets, top 200 keys, kept 35d, at most 8,388,608 bytes" in out
    assert "warm ahead: top 100 predicted keys per instance, 5m before each bucket, values from file" in out


def _filled_store(state: Path, now_index: int) -> None:
    store = HistoryStore(state, HistorySettings())
    for back in (1, 25, 49):  # the last hour, and the same hour one and two days before
        keys = (
            ((b"page:new:1", 90), (b"page:both:1", 50))
            if back == 1
            else ((b"page:both:1", 70), (b"page:old:1", 60))
        )
        store.add(
            BucketRecord(
                "shop", now_index - back, HOUR, keys, ((b"page:*:1", 140),), {"hits": 9.0, "misses": 1.0}
            )
        )
    # the next hour, on the two days before: what the season predicts
    for back in (24, 48):
        store.add(BucketRecord("shop", now_index + 1 - back, HOUR, ((b"page:next:1", 5),), (), {"hits": 1.0}))
    store.put_predictions(
        [("shop", HOUR, now_index - 1, {"combined": [b"page:new:1"], "naive": [b"page:zzz"]})]
    )
    store.score_predictions(store.buckets("shop", HOUR, since=now_index - 1).values(), 100)
    store.close()


def test_trends_json_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from cachetop.cli import main

    now_index = int(time.time() // HOUR)
    _filled_store(tmp_path / "state", now_index)
    path = tmp_path / "c.toml"
    path.write_text(
        f'[settings]\nstate_dir = "{tmp_path / "state"}"\n\n[[instance]]\nname = "shop"\nurl = "redis://127.0.0.1:1"\n'
    )
    assert main(["trends", "-c", str(path), "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)["instances"]
    assert report["this"]["index"] == now_index - 1 and report["this"]["metrics"]["hit_ratio"] == 90.0
    yesterday, week = report["compare"]
    assert yesterday["label"] == "yesterday" and yesterday["keys"] == {
        "appeared": ["page:new:1"],
        "vanished": ["page:old:1"],
    }
    assert week["label"] == "a week ago" and week["metrics"] is None
    assert report["prediction"]["for_index"] == now_index + 1
    assert report["prediction"]["keys"] == ["page:next:1"]
    assert report["prediction"]["precision_at_k"] == {
        "combined": {"mean": 0.5, "buckets": 1},  # 1 of the 2 keys the bucket had
        "naive": {"mean": 0.0, "buckets": 1},
    }
    assert main(["trends", "-c", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "new keys vs yesterday: page:new:1" in out
    assert "precision@100: combined 0.50 · naive 0.00 (last season)" in out
    assert max(len(line) for line in out) <= 80 and len(out) <= 22


def test_trends_says_where_it_looked_when_there_is_no_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cachetop.cli import main

    path = tmp_path / "c.toml"
    path.write_text(
        f'[settings]\nstate_dir = "{tmp_path}"\n\n[[instance]]\nname = "shop"\nurl = "redis://127.0.0.1:1"\n'
    )
    assert main(["trends", "-c", str(path)]) == 1
    assert f"no history of shop in {tmp_path / 'history.sqlite3'}" in capsys.readouterr().err


def test_plan_ahead_covers_every_bucket_that_starts_within_the_horizon(tmp_path: Path) -> None:
    from cachetop.history.warm_ahead import plan_ahead

    store = HistoryStore(tmp_path, HistorySettings(), clock=lambda: 1000 * HOUR)
    for index in range(1000 - 30, 1000):
        store.add(BucketRecord("a", index, HOUR, ((f"h{index % 24}".encode(), 5),), (), {}))
    plan = plan_ahead(store, "a", HistorySettings(), horizon=2.5 * HOUR, now=1000.5 * HOUR, top=1)
    assert plan.targets == (1001, 1002, 1003)
    assert plan.keys == tuple(f"h{i % 24}".encode() for i in (1001, 1002, 1003))
    store.close()


def test_a_node_that_leaves_the_fleet_keeps_its_last_bucket(tmp_path: Path) -> None:
    wall = [1_000_000.0]
    service = _started_service(tmp_path, wall)
    for step in range(15):
        names = ("a", "b") if step < 5 else ("b",)  # a cluster node removed after 5 s
        instances = tuple(
            InstanceMetrics(n, "redis", "x", Status.UP, None, {}, counters={"hits": step}) for n in names
        )
        service.on_snapshot(Snapshot(wall[0], 1.0, instances))
        wall[0] += 1.0
    service.flush()  # the worker's writes are done
    assert service.store is not None
    first = int(1_000_000.0 // 10)
    assert list(service.store.buckets("a", 10.0)) == [first]
    assert service.store.buckets("a", 10.0)[first].metrics["hits"] == 4.0
    assert "a" not in service._open  # forgotten once its bucket is stored
    asyncio.run(service.stop())


def test_a_prediction_that_finishes_while_stopping_starts_no_warm(tmp_path: Path) -> None:
    """stop() cancels the warms, then waits for the worker: a prediction it finishes meanwhile
    must not start a warm (a write to the cache after the user quit, and a task nobody cancels)."""
    import threading

    from tests.conftest import until

    path = tmp_path / "c.toml"
    path.write_text(
        f'[settings]\nstate_dir = "{tmp_path / "state"}"\n\n[[instance]]\nname = "a"\n'
        'url = "redis://127.0.0.1:9"\n\n[warm]\npredict = true\nstrategy = "file"\n'
        f'options = {{ path = "{tmp_path / "values.jsonl"}" }}\n'
    )
    started: list[object] = []

    async def main() -> None:
        service = HistoryService(load_config(path), {})
        service.start()
        loop = asyncio.get_running_loop()
        service._loop = loop
        service._start_warm = lambda *args: started.append(args)  # type: ignore[method-assign]
        gate = threading.Event()
        # A prediction still on the worker when stop() begins; it ends once stop() waits for it.
        future = service._submit(lambda: [("a", 7, [b"k"])] if gate.wait(5) else [])
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(service._warm_ahead, f))
        handed: list[object] = []
        warm_ahead = service._warm_ahead
        service._warm_ahead = lambda f: (handed.append(f), warm_ahead(f))[1]  # type: ignore[method-assign]
        flush = service.flush
        service.flush = lambda timeout=10.0: (gate.set(), flush(timeout))[1]  # type: ignore[method-assign]
        await service.stop()
        await until(lambda: handed, 5.0, "the finished prediction handed to _warm_ahead")
        assert future.result() == [("a", 7, [b"k"])]

    asyncio.run(main())
    assert started == []

"""The hot-key badge and counts: relative to the instance, stable, and honest about the top-k's
error. Pure parts with plain numbers, then the badge on a real redis-server under real load."""

from __future__ import annotations

import asyncio
import contextlib

import redis as redis_py

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.view import HotKey, HotKeysView, HotLatch
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from cachetop.tui.widgets.hotkeys_panel import key_rows, status_line
from tests.tui.helpers import cell, until


def test_hot_is_a_share_of_the_instance_with_a_small_floor() -> None:
    latch = HotLatch(min_share=5.0, min_ops=5.0)
    # A 400 ops/s instance where one key has 16%: 64 ops/s is hot (it needed 100 ops/s before).
    assert latch.update(1.0, [(b"k", 16.0, 64.0), (b"cold", 0.5, 2.0)]) == {b"k"}
    # An idle instance: 1 of 3 commands is a third of the traffic but under the floor.
    assert HotLatch(5.0, 5.0).update(1.0, [(b"idle", 33.0, 0.3)]) == set()


def test_hot_has_hysteresis_on_above_the_line_off_after_three_refreshes_below() -> None:
    latch = HotLatch(min_share=5.0, min_ops=5.0)
    shares = [6.0, 4.0, 6.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, 6.0]
    badge = [bool(latch.update(float(t), [(b"k", s, 100.0)])) for t, s in enumerate(shares)]
    # 4% is above the off line (70% of 5%): stays on; 3% three times in a row turns it off.
    assert badge == [True, True, True, True, True, True, True, False, False, True]
    # A second reader of the same refresh does not count as another refresh.
    latch = HotLatch(5.0, 5.0)
    latch.update(1.0, [(b"k", 6.0, 100.0)])
    for _ in range(5):
        assert latch.update(2.0, [(b"k", 1.0, 100.0)]) == {b"k"}
    # A hot key that drops out of the list counts as below.
    assert [latch.update(float(t), []) for t in (3.0, 4.0)] == [{b"k"}, set()]


def _view(*keys: HotKey) -> HotKeysView:
    return HotKeysView("r1", "monitor", "ops", "sampling", keys=keys, min_share=5.0, min_ops=5.0)


def test_counts_show_their_error_bound_and_rates_what_is_certain() -> None:
    # Space-Saving listed a key seen 3 times at 18 (error 15).
    key = HotKey(b"k", "k", 18, 18.0, 0.18, error=15)
    assert (key.guaranteed, key.count_text) == (3, "18 (±15)")
    row = key_rows(_view(key))[0].cells
    assert (row["count"][0], row["ops"][0], row["share"][0]) == ("18 (±15)", "≥3.0", "≥3.0%")
    exact = HotKey(b"e", "e", 40, 40.0, 0.4, hot=True)
    row = key_rows(_view(exact))[0].cells
    assert (row["count"][0], row["ops"][0], row["share"][0], row["hot"][0]) == ("40", "40", "40.0%", "♨")
    assert status_line(_view(key)).splitlines()[-1] == (
        "no hot keys (none has ≥ 5% of the sampled traffic and ≥ 5 ops/s)"
    )
    assert status_line(_view()).splitlines()[-1] == "no hot keys (no key traffic seen yet)"
    assert "no hot keys" not in status_line(_view(exact))


async def _load(port: int, stop: asyncio.Event) -> None:
    """About 400 commands/s: 16% on hot:1, the rest spread over 200 keys (0.42% each)."""
    client = redis_py.asyncio.Redis(port=port, protocol=2)
    n = 0
    try:
        while not stop.is_set():
            pipe = client.pipeline(transaction=False)
            for _ in range(25):
                n += 1
                pipe.get("hot:1" if n % 25 < 4 else f"cold:{n % 200}")
            await pipe.execute()
            await asyncio.sleep(0.0625)
    finally:
        await client.aclose()


async def test_hot_badge_on_a_400_ops_instance_shows_and_stays(redis: LocalServer) -> None:
    config = Config(
        path=None,
        settings=Settings(interval=0.25, window=4.0, timeout=1.0),
        instances=(InstanceConfig(name="r1", target=parse_target(redis.url)),),
        sections={"hotkeys": HotKeySettings(monitor_on=0.5, monitor_off=0.5)},
    )
    stop = asyncio.Event()
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with LiveSources(config, mon, alerts=False), app.run_test(size=(100, 20)):
            load = asyncio.create_task(_load(redis.port, stop))
            try:
                await until(lambda: cell(app, "r1", "name") == "r1 ♨1", deadline_s=15, what="hot badge")
                view = mon.latest.by_name("r1").extras["hotkeys"]
                assert [k.display for k in view.keys if k.hot] == ["hot:1"]
                # Stable: the same badge on each of the next 12 snapshots (3 s, several duty cycles).
                seen = app.snapshots_seen
                badges = set()
                while app.snapshots_seen < seen + 12:
                    badges.add(cell(app, "r1", "name"))
                    await until(lambda n=app.snapshots_seen: app.snapshots_seen > n, what="next snapshot")
                assert badges == {"r1 ♨1"}
            finally:
                stop.set()
                with contextlib.suppress(Exception):
                    await load

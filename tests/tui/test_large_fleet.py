"""A fleet of thousands in the dashboard: virtual rows, groups folded above 200, bounded history
and toasts, a poll queue that cancels cheaply. Behaviours, not timings (those are in
bench/fleet_tui.py); the 10,000-instance process in a real terminal is in tests/e2e/test_tmux.py."""

from __future__ import annotations

import asyncio

from cachetop.engine.config import Config, Settings
from cachetop.engine.monitor import PollSlots
from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.tui.app import CachetopApp
from cachetop.tui.history import SPARK_POINTS, History
from cachetop.tui.overview_rows import FLEET_KEY, GROUP_PREFIX
from cachetop.tui.screen_text import screen_text
from tests.conftest import until
from tests.tui.helpers import keys

TAGS = ("web", "api", "sessions", "queue")


def fleet(n: int, *, tagged: bool, down: set[int] = frozenset()) -> Snapshot:  # type: ignore[assignment]
    instances = tuple(
        InstanceMetrics(
            f"node-{i:05d}",
            "redis",
            f"10.0.{i // 256}.{i % 256}:6379",
            Status.DOWN if i in down else Status.UP,
            "connection refused" if i in down else None,
            {"ops_per_sec": float(i), "hit_ratio": 95.0, "latency_p99_ms": 1.0, "memory_used_pct": 40.0},
            tags=(TAGS[i % 4],) if tagged else (),
        )
        for i in range(n)
    )
    return Snapshot(0.0, 10.0, instances)


def app_for(*snaps: Snapshot) -> CachetopApp:
    config = Config(path=None, settings=Settings(interval=1.0, window=10.0), instances=())
    return CachetopApp(config, snapshots=snaps)


async def test_ten_thousand_rows_are_virtual_only_the_screen_is_formatted_and_end_reaches_the_last() -> None:
    snap = fleet(10_000, tagged=False)
    app = app_for(snap)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one("FleetTable")
        await until(lambda: table.row_count == 10_001, what="every row (and the fleet row)")
        await pilot.pause()
        # One more tick: rows are rebuilt, but only those on screen get their cells made.
        drawn_before = table.lines_rendered
        app.on_snapshot(snap, toast=False)
        await pilot.pause()
        made = [r for r in table._rows if r._cells is not None]
        assert 0 < len(made) <= 30
        assert table.lines_rendered - drawn_before <= 30
        await keys(app, "end")
        await until(lambda: table.selected_key() == "node-09999", what="the cursor on the last row")
        await until(lambda: "node-09999" in screen_text(app), what="the last row on screen")
        await keys(app, "home", "pagedown")
        await until(lambda: table.cursor_row > 20, what="a page down")
        assert table.selected_key() == f"node-{table.cursor_row - 1:05d}"


async def test_above_200_instances_groups_start_folded_and_c_unfolds_them() -> None:
    app = app_for(fleet(1_000, tagged=True))
    async with app.run_test(size=(100, 30)):
        table = app.screen.query_one("FleetTable")
        await until(lambda: table.row_count > 0, what="rows")
        assert table.row_keys == [FLEET_KEY] + [GROUP_PREFIX + t for t in sorted(TAGS)]
        assert table.cell_text(GROUP_PREFIX + "api", "name") == "▸ api (250)"
        assert table.cell_text(FLEET_KEY, "name") == "Σ fleet (1,000)"
        await keys(app, "c")
        await until(lambda: table.row_count == 1 + 4 + 1_000, what="every group unfolded")


async def test_200_instances_or_fewer_start_unfolded() -> None:
    app = app_for(fleet(200, tagged=True))
    async with app.run_test(size=(100, 30)):
        table = app.screen.query_one("FleetTable")
        await until(lambda: table.row_count == 1 + 4 + 200, what="groups unfolded")


async def test_a_rack_going_down_is_one_toast_not_hundreds() -> None:
    app = app_for(fleet(300, tagged=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(lambda: app.latest is not None, what="first snapshot")
        app.on_snapshot(fleet(300, tagged=False, down=set(range(120))))
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert messages == ["120 instances changed: 120 went down"]
        notes = str(app.screen.query_one("#notes").render())
        assert "more down" in notes and len(notes) < 400  # two lines, not 120 reasons


def test_history_keeps_sparklines_only_above_200_and_everything_for_an_opened_instance() -> None:
    large, small = History(), History()
    for t in range(3):
        large.add(Snapshot(float(t), 10.0, fleet(201, tagged=False).instances))
        small.add(Snapshot(float(t), 10.0, fleet(200, tagged=False).instances))
    sparse = large.of("node-00007")
    assert list(sparse.series) == ["ops_per_sec"] and sparse.times.maxlen == SPARK_POINTS
    assert sparse.values("ops_per_sec") == [7.0, 7.0, 7.0]
    # Every series a chart of the detail view draws (the registry's charted metrics): ten.
    assert small.of("node-00007").full and len(small.of("node-00007").series) == 10
    large.keep_full("node-00007")  # the detail view opened
    large.add(Snapshot(3.0, 10.0, fleet(201, tagged=False).instances))
    kept = large.of("node-00007")
    assert kept.full
    assert kept.values("ops_per_sec") == [7.0, 7.0, 7.0, 7.0]
    assert kept.values("hit_ratio") == [None, None, None, 95.0]  # lined up: not kept before


async def test_poll_slots_are_first_come_first_served_and_a_cancelled_waiter_is_skipped() -> None:
    slots = PollSlots(1)
    order: list[str] = []

    async def poll(name: str) -> None:
        async with slots:
            order.append(name)

    await slots.__aenter__()  # the one slot is taken
    tasks = {name: asyncio.create_task(poll(name)) for name in ("a", "b", "c")}
    await asyncio.sleep(0)
    tasks["b"].cancel()
    await asyncio.sleep(0)
    await slots.__aexit__(None, None, None)
    await asyncio.gather(tasks["a"], tasks["c"])
    assert order == ["a", "c"]
    assert tasks["b"].cancelled()


async def test_a_group_too_large_for_up_slash_total_shows_the_share_up() -> None:
    app = app_for(fleet(10_000, tagged=True, down=set(range(0, 10_000, 3))))
    async with app.run_test(size=(80, 24)):
        table = app.screen.query_one("FleetTable")
        await until(lambda: table.row_count == 5, what="the fleet row and four folded groups")
        assert table.cell_text(FLEET_KEY, "status") == "66% up"  # 6,666 of 10,000
        assert table.cell_text(GROUP_PREFIX + "api", "status") == "66% up"
        assert "Σ fleet (10,000)" in screen_text(app)

"""Keys beyond the basics: replay stepping ([ ] { } < >, replay only) and folding groups (c, enter)."""

from __future__ import annotations

from pathlib import Path

from cachetop.engine.config import Config, Settings
from cachetop.exporters.recorder import Recorder, Recording
from cachetop.exporters.replay import ReplayPlayer
from cachetop.tui.app import CachetopApp
from cachetop.tui.sample_data import sample_config, sample_snapshots
from tests.tui.helpers import keys, until


async def test_step_and_seek_keys_move_through_the_recording(tmp_path: Path) -> None:
    frames = sample_snapshots(30)
    recorder = Recorder.create(tmp_path / "run.db")
    for snap in frames:
        recorder.on_snapshot(snap)
    recorder.close()
    player = ReplayPlayer(Recording.open(tmp_path / "run.db"), start_paused=True)
    player.seek(index=0)
    config = Config(path=None, settings=Settings(interval=1.0, window=10.0), instances=())
    app = CachetopApp(config, monitor=player, read_only=True)
    async with player, app.run_test(size=(100, 30)):
        await keys(app, "right_square_bracket", "right_square_bracket")
        await until(lambda: player.position == 2, what="two steps forward")
        assert player.latest == frames[2]
        await keys(app, "right_curly_bracket")
        await until(lambda: player.position == 12, what="ten more")
        await keys(app, "left_square_bracket")
        await until(lambda: player.position == 11, what="one back")
        await keys(app, "greater_than_sign")
        await until(lambda: player.position == 29, what="the last frame")
        await keys(app, "less_than_sign")
        await until(lambda: player.position == 0, what="the first frame")
        assert player.paused
        assert app.latest == frames[0]


async def test_replay_keys_do_nothing_on_a_live_dashboard() -> None:
    app = CachetopApp(sample_config(), snapshots=sample_snapshots(3))
    async with app.run_test(size=(100, 30)):
        assert app.check_action("step", (1,)) is False
        await keys(app, "right_square_bracket")  # no monitor with step(): ignored, no error
        assert app.return_code is None


async def test_groups_fold_with_c_and_enter() -> None:
    snaps = sample_snapshots(3)
    app = CachetopApp(sample_config(), snapshots=snaps)
    async with app.run_test(size=(120, 40)):
        table = app.screen.query_one("FleetTable")
        await until(lambda: table.row_count > 0, what="rows")
        groups = [k for k in table.row_keys if k.startswith("__group__:")]
        assert groups, "the sample fleet has tags"
        full = table.row_count
        await keys(app, "c")
        await until(lambda: table.row_count == 1 + len(groups), what="every group folded")
        await keys(app, "c")
        await until(lambda: table.row_count == full, what="every group unfolded")
        table.move_cursor(row=table.get_row_index(groups[0]))
        await keys(app, "enter")
        await until(lambda: table.row_count < full, what="one group folded by enter")

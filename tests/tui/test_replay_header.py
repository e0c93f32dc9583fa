"""Issue 13, replay for a post-mortem: the header says REPLAY with the frame's own time and its
number, the interval reads as a person would write it, and the footer offers the replay keys
(and not `r`, which has nothing to poll). On a real recording of a real Redis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cachetop.engine.config import Config, Settings
from cachetop.engine.monitor import Monitor
from cachetop.exporters.outputs import attach_outputs
from cachetop.exporters.recorder import Recording
from cachetop.exporters.replay import ReplayPlayer
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from tests.monitoring import fast_config
from tests.tui.helpers import keys, text, until

FRAMES = 5
INTERVAL = 0.5


@pytest.fixture
async def recording(tmp_path: Path, redis: LocalServer) -> Recording:
    path = tmp_path / "incident.ctrec"
    mon = Monitor(fast_config(redis.url, interval=INTERVAL, window=5.0))
    async with mon, attach_outputs(mon, record=str(path)):
        await mon.wait_snapshot(lambda s: len(Recording.open(path)) >= FRAMES, timeout=20)
    return Recording.open(path)


def clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


async def test_replay_header_shows_frame_time_number_and_a_round_interval(recording: Recording) -> None:
    total = len(recording)
    player = ReplayPlayer(recording, start_paused=True)
    player.seek(index=1)
    assert f"{player.recorded_interval:g}" != "0.5"  # recorded gaps are never exact: 0.50x
    config = Config(path=None, settings=Settings(interval=player.recorded_interval, window=5.0), instances=())
    app = CachetopApp(config, monitor=player, read_only=True)
    async with player, app.run_test(size=(80, 24)):
        await until(lambda: "REPLAY" in text(app).splitlines()[0], what="the replay header")
        header = text(app).splitlines()[0]
        assert f"REPLAY {clock(recording[1].time)} (frame 2/{total})" in header, header
        assert "every 0.5s · window 5s" in header, header
        assert "PAUSED" not in header  # a stepped replay is always paused: the marker says enough
        footer = text(app).splitlines()[-1]
        for item in ("[ -1", "] +1", "{ -10", "} +10", "< first", "> last"):
            assert item in footer, footer
        assert "r Refresh" not in footer, footer
        assert app.check_action("refresh", ()) is False

        await keys(app, "greater_than_sign")
        await until(lambda: f"(frame {total}/{total})" in text(app).splitlines()[0], what="the last frame")
        header = text(app).splitlines()[0]
        assert f"REPLAY {clock(recording[total - 1].time)} (frame {total}/{total})" in header, header

"""Record a demo run (the full 60 s phase cycle, played 10x faster) and replay it frame by frame."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cachetop.demo import DemoFleet
from cachetop.exporters.outputs import attach_outputs
from cachetop.exporters.recorder import KEYFRAME_EVERY, Recorder, Recording, RecordingError
from cachetop.exporters.replay import ReplayPlayer
from cachetop.model import Snapshot, Status
from cachetop.monitor import Monitor

FRAMES = 70  # > one demo cycle (60 s at phase_scale 0.1 = 6 s at 0.1 s a frame) and > one keyframe span


def without_extras(snap: Snapshot) -> Snapshot:
    return dataclasses.replace(
        snap, instances=tuple(dataclasses.replace(i, extras={}) for i in snap.instances)
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Snapshot]]:
    import asyncio

    path = tmp_path_factory.mktemp("rec") / "demo.ctrec"
    seen: list[Snapshot] = []

    async def record() -> None:
        with DemoFleet(ops_per_sec=600, phase_scale=0.1) as fleet:
            async with (
                Monitor(fleet.config(interval=0.1, window=1.0)) as mon,
                attach_outputs(mon, record=str(path)),
            ):
                mon.subscribe(seen.append)
                await mon.wait_snapshot(lambda s: len(seen) >= FRAMES, 30)
                mon.pause()

    asyncio.run(record())
    return path, [without_extras(s) for s in seen]


def test_every_frame_replays_with_identical_values(recorded: tuple[Path, list[Snapshot]]) -> None:
    path, seen = recorded
    recording = Recording.open(path)
    assert len(recording) == len(seen) >= FRAMES
    assert list(recording) == seen  # dataclass equality: every value, status, fact and command stat
    # The demo did something: traffic, and phases that moved the hit ratio.
    hit_ratios = {s.by_name("cache-main").metrics["hit_ratio"] for s in seen if s.by_name("cache-main")}
    assert len(hit_ratios) > 10
    assert any(i.status == Status.UP and (i.metrics["ops_per_sec"] or 0) > 0 for i in seen[-1].instances)
    # Random access (through keyframes) gives the same frames as sequential stepping.
    for index in (len(seen) - 1, 0, KEYFRAME_EVERY, KEYFRAME_EVERY - 1, 3):
        assert Recording.open(path)[index] == seen[index]
    db_frames = recording.db.execute("SELECT keyframe, length(data) FROM frames ORDER BY seq").fetchall()
    assert [k for k, _ in db_frames].count(1) == -(-len(seen) // KEYFRAME_EVERY)
    # Deltas are smaller than keyframes.
    deltas = sorted(n for k, n in db_frames if not k)
    keys = sorted(n for k, n in db_frames if k)
    assert deltas[len(deltas) // 2] < keys[0]


async def test_player_steps_seeks_and_pauses(recorded: tuple[Path, list[Snapshot]]) -> None:
    path, seen = recorded
    player = ReplayPlayer(Recording.open(path), speed=50.0, start_paused=True)
    shown: list[Snapshot] = []
    player.subscribe(shown.append)
    assert player.step() == seen[0]
    assert player.step(5) == seen[5]
    assert player.step(-2) == seen[3]
    assert player.step(-100) == seen[0]
    assert player.seek(index=40) == seen[40]
    assert player.seek(time=seen[20].time + 1e-6) == seen[20]
    assert player.seek(time=seen[0].time - 100) == seen[0]
    assert shown == [seen[i] for i in (0, 5, 3, 0, 40, 20, 0)]
    assert player.paused
    async with player:
        player.resume()
        import asyncio

        async def until_end() -> None:
            while not (player.at_end and player.paused):
                await asyncio.sleep(0.01)

        await asyncio.wait_for(until_end(), 20)
    # Played on from frame 0 to the last one, in order, every frame once.
    assert shown[7:] == seen[1:]


def test_replay_json_cli_prints_every_frame_and_refuses_bad_files(
    recorded: tuple[Path, list[Snapshot]], tmp_path: Path
) -> None:
    path, seen = recorded
    done = subprocess.run(
        [sys.executable, "-m", "cachetop", "replay", str(path), "--json", "--at", "10"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [s.to_json() for s in seen[10:]]
    junk = tmp_path / "junk.ctrec"
    junk.write_text("not sqlite")
    bad = subprocess.run(
        [sys.executable, "-m", "cachetop", "replay", str(junk), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (bad.returncode, bad.stderr.strip()) == (
        2,
        f"cachetop: {junk}: not a cachetop recording (made by --record)",
    )
    with pytest.raises(RecordingError, match="already exists"):
        Recorder.create(path)

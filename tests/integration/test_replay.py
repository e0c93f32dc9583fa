"""Record a demo run (the full 60 s phase cycle, played 10x faster) and replay it frame by frame."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import psutil
import pytest

from cachetop.exporters import recorder as recorder_module
from cachetop.exporters.recorder import KEYFRAME_EVERY, STATE_MAX, Recorder, Recording, RecordingError
from cachetop.exporters.replay import ReplayPlayer
from cachetop.model import InstanceMetrics, Snapshot, Status
from tests.conftest import wait_until
from tests.demo_recording import record_demo

FRAMES = 70  # > one demo cycle (60 s at phase_scale 0.1 = 6 s at 0.1 s a frame) and > one keyframe span


def without_extras(snap: Snapshot) -> Snapshot:
    return dataclasses.replace(
        snap, instances=tuple(dataclasses.replace(i, extras={}) for i in snap.instances)
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Snapshot]]:
    path = tmp_path_factory.mktemp("rec") / "demo.ctrec"
    seen = record_demo(path, FRAMES, 30)
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


# --- hostile recordings ----------------------------------------------------------------------------


def snapshot_at(t: float, n_instances: int = 1, value: float = 0.5) -> Snapshot:
    instances = tuple(
        InstanceMetrics(
            name=f"cache-{i}",
            kind="redis",
            address=f"10.0.0.{i}:6379",
            status=Status.UP,
            error=None,
            metrics={"hit_ratio": value, "ops_per_sec": float(i) + t},
        )
        for i in range(n_instances)
    )
    return Snapshot(time=t, window_s=1.0, instances=instances)


def small_recording(path: Path, frames: int = 2) -> list[Snapshot]:
    recorder = Recorder.create(path)
    snaps = [snapshot_at(1000.0 + i) for i in range(frames)]
    for snap in snaps:
        recorder.on_snapshot(snap)
    recorder.close()
    return snaps


def zlib_bomb(size: int) -> bytes:
    """A valid zlib stream of a JSON object holding one `size`-byte string, about size/1000 bytes
    long. Built without ever holding `size` bytes: after a full flush deflate starts afresh, so
    the same 16 MiB of input compresses to the same block, which is repeated."""
    body = b"a" * (16 << 20)
    deflate = zlib.compressobj(9)
    head = deflate.compress(b'{"order":["') + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(body) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert deflate.compress(body) + deflate.flush(zlib.Z_FULL_FLUSH) == block
    end = deflate.compress(b'"]}') + deflate.flush()
    checksum = zlib.adler32(b'{"order":["')
    for _ in range(size // len(body)):
        checksum = zlib.adler32(body, checksum)
    checksum = zlib.adler32(b'"]}', checksum)
    return head + block * (size // len(body)) + end[:-4] + checksum.to_bytes(4, "big")


def test_a_decompression_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.ctrec"
    snaps = small_recording(path, frames=1)
    bomb = zlib_bomb(2 << 30)  # 2 GiB of JSON in 2 MB
    assert len(bomb) < 3 << 20
    assert len(zlib.decompressobj().decompress(bomb, 1 << 20)) == 1 << 20  # a real stream
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO frames VALUES (1, 1001.0, 1, ?)", (bomb,))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachetop", "replay", str(path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ps, peak = psutil.Process(proc.pid), 0

    def ended() -> bool:
        nonlocal peak
        with contextlib.suppress(psutil.Error):
            peak = max(peak, ps.memory_info().rss)
        return proc.poll() is not None

    try:
        wait_until(ended, 60, "replay to end")
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = proc.communicate()
    print(f"replay of a 2 GiB decompression bomb: peak RSS {peak / 1e6:.0f} MB")  # shown with -s
    # The frame before it was printed; then a clear error, exit 2, no traceback.
    assert [json.loads(line) for line in out.splitlines()] == [snaps[0].to_json()]
    assert (proc.returncode, err.strip()) == (
        2,
        f"cachetop: {path}: frame 1 exceeds 256 MiB (a recording holds frames of at most 256 MiB)",
    )
    assert peak < STATE_MAX + 128 * 1024 * 1024, f"peak RSS {peak / 1e6:.0f} MB"


def test_the_recorder_starts_a_keyframe_before_a_span_passes_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spans are bounded at write time, so every recording cachetop writes reads back."""
    monkeypatch.setattr(recorder_module, "STATE_MAX", 40_000)
    path = tmp_path / "spans.ctrec"
    recorder = Recorder.create(path)
    snaps = [snapshot_at(1000.0 + i, n_instances=10, value=i / 100) for i in range(20)]
    for snap in snaps:
        recorder.on_snapshot(snap)
    recorder.close()
    recording = Recording.open(path)
    assert list(recording) == snaps
    rows = recording.db.execute("SELECT keyframe, data FROM frames ORDER BY seq").fetchall()
    keyframes = [seq for seq, (key, _) in enumerate(rows) if key]
    assert 2 < len(keyframes) < 20  # more keyframes than KEYFRAME_EVERY would make, fewer than frames
    span = 0
    for key, blob in rows:
        cost = recorder_module.frame_cost(zlib.decompress(blob))
        span = cost if key else span + cost
        assert span <= 40_000
    # A frame larger than the limit by itself is left out, with a warning, and not half-written.
    monkeypatch.setattr(recorder_module, "STATE_MAX", 1_000)
    recorder = Recorder.create(tmp_path / "huge.ctrec")
    recorder.on_snapshot(snaps[0])
    recorder.close()
    assert (recorder.frames, recorder.skipped, len(Recording.open(tmp_path / "huge.ctrec"))) == (0, 1, 0)


def test_deltas_that_grow_a_span_past_the_limit_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hand-made file whose deltas keep adding keys: each frame is small, the state is not."""
    path = tmp_path / "growing.ctrec"
    small_recording(path, frames=1)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        for seq in range(1, 6):
            delta = {"s": {f"junk{seq}": "x" * 30_000}}
            db.execute(
                "INSERT INTO frames VALUES (?, ?, 0, ?)",
                (seq, 1000.0 + seq, zlib.compress(json.dumps(delta).encode())),
            )
    monkeypatch.setattr(recorder_module, "STATE_MAX", 100_000)
    recording = Recording.open(path)
    assert recording.state(2)["junk2"] == "x" * 30_000
    with pytest.raises(RecordingError) as caught:
        recording.state(4)
    assert str(caught.value) == (
        f"{path}: frame 4 and the frames since the keyframe before it exceed 0.0953674 MiB "
        "(a recording holds at most 0.0953674 MiB from one keyframe to the next)"
    )
    # Damaged frames say so (no zlib or JSON traceback).
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE frames SET data = ? WHERE seq = 1", (b"not zlib",))
    with pytest.raises(RecordingError, match=r"frame 1 does not decode \(a damaged recording\?\)"):
        Recording.open(path)[1]

"""`cachetop replay FILE`: the dashboard on a recording, with step, seek and pause."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime

from cachetop.engine.config import Config, Settings
from cachetop.engine.configfile import ConfigError
from cachetop.exporters.recorder import Recording, RecordingError
from cachetop.exporters.replay import ReplayPlayer

HELP = "replay a recording made with --record: the dashboard, with step, seek and pause"
DESCRIPTION = """\
Open the dashboard on a recording made by `cachetop --record FILE` or `cachetop daemon --record
FILE`. Frames play at the pace they were recorded; p pauses, +/- change the speed. With --json
the frames are printed instead, one JSON document per line (the `snapshot --json` shape)."""
EPILOG = """\
examples:
  cachetop replay incident.ctrec
  cachetop replay incident.ctrec --at 2026-05-04T03:12:00 --paused
  cachetop replay incident.ctrec --json | jq '.instances[] | {name, hit: .metrics.hit_ratio}'
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a recording (made with --record)")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed (default: 1, as recorded)")
    parser.add_argument("--at", metavar="TIME", help="start at this local time (ISO 8601) or frame number")
    parser.add_argument("--paused", action="store_true", help="open paused on the first frame shown")
    parser.add_argument("--json", action="store_true", help="print the frames as JSON lines, no screen")
    parser.add_argument("--theme", choices=("dark", "light"), help="colour theme (default: dark)")


def start_index(recording: Recording, at: str | None) -> int:
    if at is None:
        return 0
    if at.isdigit():
        return min(int(at), len(recording) - 1)
    try:
        when = datetime.fromisoformat(at).timestamp()
    except ValueError:
        raise ConfigError(
            f"--at: {at!r} is neither a frame number nor an ISO time like 2026-05-04T03:12:00"
        ) from None
    return recording.index_at(when)


def run(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        raise ConfigError(f"--speed: must be positive, not {args.speed:g}")
    try:
        recording = Recording.open(args.file)
    except RecordingError as exc:
        raise ConfigError(str(exc)) from None
    if len(recording) == 0:
        raise ConfigError(f"{args.file}: the recording holds no frames")
    first = start_index(recording, args.at)
    try:
        if args.json:
            for index in range(first, len(recording)):
                sys.stdout.write(json.dumps(recording[index].to_json(), separators=(",", ":")) + "\n")
            return 0
        return asyncio.run(_dashboard(recording, first, args))
    except RecordingError as exc:  # a frame past the limits, or damaged: what was good is shown
        raise ConfigError(str(exc)) from None


async def _dashboard(recording: Recording, first: int, args: argparse.Namespace) -> int:
    try:
        from cachetop.tui.app import CachetopApp
        from cachetop.tui.run import run_on_source
    except ImportError:
        print("cachetop: the dashboard is not available in this build; try --json", file=sys.stderr)
        return 2
    player = ReplayPlayer(recording, speed=args.speed, start_paused=True)
    snap = player.seek(index=first)
    config = Config(
        path=None,
        settings=Settings(
            interval=player.recorded_interval, window=max(snap.window_s, player.recorded_interval)
        ),
        instances=(),
    )
    app = CachetopApp(config, monitor=player, theme=args.theme, read_only=True)
    app.sub_title = f"replay {recording.path.name}"
    if not args.paused:
        player.resume()
    from cachetop.util.terminal import screen_on_terminal

    with screen_on_terminal():  # `2>err.log`: the screen on the terminal, only log lines in the file
        return await run_on_source(app, config, player)

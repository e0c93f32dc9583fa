"""`cachetop snapshot`: poll, wait one window, print the numbers (a table, or JSON)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from dataclasses import replace

from cachetop.cli import add_target_arguments
from cachetop.commands.common import config_from_args, flag_duration
from cachetop.commands.render_table import Output, print_snapshot
from cachetop.engine.config import Config
from cachetop.engine.configfile import ConfigError
from cachetop.engine.monitor import Monitor
from cachetop.model import Snapshot, Status
from cachetop.util.redact import scrub_json

# How long after its due time a snapshot waits for polls still in flight (a healthy one takes
# milliseconds): at most this late, never a timeout late.
GRACE_S = 0.1

HELP = "poll once over a short window and print the numbers (table or --json)"
DESCRIPTION = """\
Poll every instance, wait one window (default 1s), poll again, and print windowed numbers:
hit ratio, ops/s, probe latency p50/p95/p99, memory, error rate, evictions. With --count N,
print N consecutive snapshots (JSON lines with --json), one every window, on time: an instance
that has not answered yet is not waited for. It keeps its last values, marked stale, until its
--timeout declares it down."""
EPILOG = """\
exit status: 0 every instance answered, 1 any did not, 2 usage or config error.

examples:
  cachetop snapshot redis://127.0.0.1:6379 memcached://127.0.0.1:11211
  cachetop snapshot --json --window 5 -c cachetop.toml | jq '.instances[].metrics.hit_ratio'
  cachetop snapshot --json --count 60 redis://cache-1:6379 > minute.jsonl
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument(
        "--window", metavar="SECONDS", default="1", help="window to measure over (default: 1)"
    )
    parser.add_argument("--count", type=int, default=1, metavar="N", help="print N snapshots (default: 1)")
    parser.add_argument(
        "--json", action="store_true", help="print JSON (one document, or JSON lines with --count)"
    )


def run(args: argparse.Namespace) -> int:
    window = flag_duration(args.window, "--window")
    assert window is not None  # the flag has a default
    if args.count < 1:
        raise ConfigError("--count: must be at least 1")
    flag_duration(args.interval, "--interval")  # refused if nonsense, though unused:
    args.interval = args.window  # one poll per window, so the window is the interval here
    config = config_from_args(args)
    # One poll per window: the first at t=0, the next at t=window, with probes in between.
    settings = replace(config.settings, interval=window, window=window)
    config = replace(
        config,
        settings=settings,
        instances=tuple(replace(i, interval=None) for i in config.instances),
    )
    return asyncio.run(_run(config, args.count, args.json))


async def _run(config: Config, count: int, as_json: bool) -> int:
    status = 0
    window = config.settings.window
    loop = asyncio.get_running_loop()
    async with Monitor(config) as monitor:
        start = loop.time()  # every poller polls now, then once a window
        for n in range(count):
            # Snapshot n is due when poll n + 2 began (one window after poll n + 1), plus a grace
            # for the answers: whoever has not answered by then is shown as it was (stale), or as
            # not polled yet, so one silent instance never delays the others.
            due = start + (n + 1) * window + min(GRACE_S, window / 10)
            with contextlib.suppress(TimeoutError):
                await monitor.wait_polls(n + 2, timeout=max(0.0, due - loop.time()))
            snap = monitor.snapshot()
            if any(i.status != Status.UP for i in snap.instances):
                status = 1
            _print(snap, as_json, count)
    return status


def _print(snap: Snapshot, as_json: bool, count: int) -> None:
    if as_json:
        text = json.dumps(scrub_json(snap.to_json()), indent=None if count > 1 else 2, allow_nan=False)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    out = Output(sys.stdout)  # a rich table on a terminal, plain full-width text in a pipe or file
    print_snapshot(snap, out)
    out.flush()

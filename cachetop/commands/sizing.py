"""`cachetop sizing`: hit ratio against memory, per policy, from a MONITOR profile or a trace file
(cachetop/analysis/sizing)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cachetop.engine.configfile import ConfigError

HELP = "how much memory does the cache need? hit ratio against memory per policy (table or --json)"
DESCRIPTION = """\
Watch each instance's commands for --duration, keep every access of a spatially sampled subset of
the keys (--sample-rate of them, chosen by a hash: SHARDS), and simulate the cache at 0.25x to 4x
its current size: with Redis's own sampled LRU/LFU (maxmemory-samples), with the other Redis
policy, and with S3-FIFO (a policy a client-side cache or a proxy could use; Redis cannot). Memory
per key is measured (used_memory per key), so sizes are real server memory.

The curve's point at the current size is shown beside the hit ratio the server measured just before
the profile: when they disagree by more than 3 points, the report says so.

Cost: Redis's MONITOR is on for the whole --duration; while it is on a saturated Redis serves
55-63% fewer commands (an idle one loses nothing), and its output buffer counts against maxmemory.
A guard ends it at half of 8 MiB of output buffer, a guardian process ends it if cachetop stops
reading or is killed, and Ctrl-C ends it at once (the curve is then built from what was seen).
--trace FILE runs offline on a file of accesses: no server is touched."""
EPILOG = """\
--trace FILE: one access per line, KEY [SIZE [TIME]] (spaces, tabs or commas); with SIZE the memory
axis is the sum of sizes, without it each key counts 1; --memory gives the current size.

JSON: {"instances": [{"name", "policy", "memory_max_bytes", "hit_ratio_now", "hit_ratio_predicted_now",
"curves": [{"policy", "label", "points": [{"memory_bytes", "hit_ratio", "objects", "filled"}]}],
"memory_model", "sample", "cost", "notes"}]}; hit ratios in percent.

examples:
  cachetop sizing redis://127.0.0.1:6379
  cachetop sizing --duration 60s --sample-rate 0.1 --hit-ratio 90 redis://10.0.0.5:6379
  cachetop sizing --at 8GiB --json redis://10.0.0.5:6379 | jq '.instances[0].curves[0]'
  cachetop sizing --trace accesses.txt --memory 100MiB
"""

DEFAULT_DURATION_S = 30.0
WATCH_NOTE = (
    "memcached's `watch fetchers mutations` costs the server little (it drops lines rather than wait "
    "for a watcher; the report gives the drop rate)."
)
DEFAULT_RATE = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cachetop.cli import add_target_arguments

    add_target_arguments(parser)
    parser.add_argument(
        "--duration", metavar="DURATION", help='how long MONITOR watches each instance (default: "30s")'
    )
    parser.add_argument(
        "--sample-rate",
        type=float,
        metavar="R",
        default=DEFAULT_RATE,
        help="share of the keys whose every access is kept, 0 < R <= 1 (default: 0.05)",
    )
    parser.add_argument("--trace", metavar="FILE", help="simulate this file of accesses instead of a server")
    parser.add_argument(
        "--memory", metavar="SIZE", help='with --trace: the current cache size (e.g. "100MiB")'
    )
    parser.add_argument(
        "--hit-ratio",
        type=float,
        action="append",
        default=[],
        metavar="PCT",
        help="also say the memory needed for this hit ratio (repeatable)",
    )
    parser.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="SIZE",
        help="also say the hit ratio at this memory (repeatable)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="another hash: another subset of keys"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _sizes(values: list[str], flag: str) -> list[int]:
    from cachetop.hotkeys.config import parse_size

    out = []
    for v in values:
        try:
            out.append(parse_size(v))
        except ValueError as exc:
            raise ConfigError(f"{flag}: {exc}") from None
    return out


def _check(args: argparse.Namespace) -> tuple[float, list[int]]:
    from cachetop.util.durations import parse_duration

    if not 0.0 < args.sample_rate <= 1.0:
        raise ConfigError("--sample-rate: must be above 0 and at most 1")
    for pct in args.hit_ratio:
        if not 0.0 < pct <= 100.0:
            raise ConfigError("--hit-ratio: must be above 0 and at most 100 (percent)")
    try:
        duration = parse_duration(args.duration) if args.duration else DEFAULT_DURATION_S
    except ValueError as exc:
        raise ConfigError(f"--duration: {exc}") from None
    if duration <= 0:
        raise ConfigError("--duration: must be positive")
    return duration, _sizes(args.at, "--at")


def run(args: argparse.Namespace) -> int:
    from cachetop.commands.common import exit_code, print_reports
    from cachetop.commands.render_table import is_terminal
    from cachetop.commands.sizing_table import print_report

    duration, at_bytes = _check(args)
    interrupted = False
    if args.trace:
        reports = [_trace_report(args)]
    else:
        from cachetop.commands.common import config_from_args

        config = config_from_args(args)
        reports, interrupted = asyncio.run(
            _analyse_all(config, args, duration, show_bar=is_terminal(sys.stderr))
        )
    failed = print_reports(
        reports, args.json, lambda r, out: print_report(r, out, hit_ratios=args.hit_ratio, at_bytes=at_bytes)
    )
    return exit_code(interrupted, failed)


def _trace_report(args: argparse.Namespace) -> dict[str, Any]:
    from cachetop.analysis.sizing.analyse import analyse_trace
    from cachetop.analysis.sizing.trace_file import TraceFileError

    memory = _sizes([args.memory], "--memory")[0] if args.memory else None
    try:
        return analyse_trace(
            Path(args.trace), rate=args.sample_rate, memory_bytes=memory, seed=args.seed
        ).to_json()
    except TraceFileError as exc:
        raise ConfigError(str(exc)) from None


async def _analyse_all(
    config: Any, args: argparse.Namespace, duration: float, *, show_bar: bool
) -> tuple[list[dict[str, Any]], bool]:
    from cachetop.analysis.sizing.analyse import analyse_memcached, analyse_redis
    from cachetop.analysis.sizing.profile_redis import COST_NOTE
    from cachetop.commands.common import Interrupts
    from cachetop.util.format import size

    reports: list[dict[str, Any]] = []
    with Interrupts(
        "profile off; building the curve from what was seen (Ctrl-C again to stop at once)"
    ) as ints:
        for inst in config.instances:
            if ints.interrupted:
                break
            kind = inst.target.kind
            if kind not in ("redis", "valkey", "memcached"):
                reports.append(_failed(inst, f"sizing works on a single server, not a {kind} target"))
                continue
            cost = WATCH_NOTE if kind == "memcached" else COST_NOTE.format(omem=size(8 << 20))
            what = "watch" if kind == "memcached" else "MONITOR"
            print(f"{inst.name}: {what} for {duration:g} s. {cost}", file=sys.stderr)
            analyse = analyse_memcached if kind == "memcached" else analyse_redis
            with _bar(show_bar, inst.name, duration, what) as progress:
                work = analyse(
                    inst,
                    duration=duration,
                    rate=args.sample_rate,
                    seed=args.seed,
                    progress=progress,
                    cancel=ints.stop,
                )
                try:
                    reports.append((await ints.run(work)).to_json())
                except asyncio.CancelledError:
                    reports.append(_failed(inst, "stopped at once (second Ctrl-C)"))
                    break
                except Exception as exc:  # one line, no traceback, no secret
                    from cachetop.hotkeys.conn import redis_error_text

                    reports.append(_failed(inst, redis_error_text(inst, exc)))
    return reports, ints.interrupted


def _failed(inst: Any, error: str) -> dict[str, Any]:
    return {
        "name": inst.name,
        "policy": None,
        "memory_max_bytes": None,
        "hit_ratio_now": None,
        "curves": [],
        "error": error,
        "notes": [],
    }


@contextlib.contextmanager
def _bar(enabled: bool, name: str, duration: float, what: str) -> Iterator[Callable[[Any], None] | None]:
    """A rich progress bar on stderr (a terminal only): seconds of `what` (MONITOR or watch), lines,
    sampled reads."""
    from cachetop.commands.common import instance_progress

    with instance_progress(enabled, name, "starting", total=duration, counted=False) as show:
        if show is None:
            yield None
            return

        def update(p: Any) -> None:
            done = p.elapsed_s >= p.duration_s
            phase = "simulating" if done else f"{what} {p.lines} lines, {p.sampled_reads} sampled reads"
            show(phase, completed=min(p.elapsed_s, p.duration_s))

        yield update

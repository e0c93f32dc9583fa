"""`cachetop hotkeys`: sample each instance's traffic for a while and print its hottest keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from dataclasses import replace
from typing import Any

from cachetop.analysis.node_balance import DEFAULT_TARGET_IMBALANCE
from cachetop.commands.common import Interrupts, exit_code
from cachetop.engine.configfile import ConfigError
from cachetop.hotkeys.collector import HotKeyCollector
from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.view import HotKeysView

ADVICE_KEYS = 500  # keys listed per node with --advice (per-slot sums)
HELP = "sample traffic for a few seconds and print the hottest keys (table or --json)"
DESCRIPTION = """\
Watch each instance's key traffic for --duration seconds and print the hottest keys with their
count, ops/s and share of the sampled traffic. Redis: server-side HOTKEYS where the server has
it, LFU counters under an LFU eviction policy, otherwise MONITOR (sampled for the whole duration,
stopped early if its output buffer nears the [hotkeys] omem_limit). Memcached: `watch`.
Ctrl-C stops early and prints what was sampled; the MONITOR/watch connection is always closed."""
EPILOG = """\
JSON: {"instances": [{"name", "source", "keys": [{"key", "count", "ops_per_sec", "share", ...}]}]},
keys sorted by count; bytes that are not UTF-8, backslashes and control characters are escaped.
--advice adds "nodes": [{"name", "ops_per_sec", "imbalance", ...}] and "advice": [{"kind", "key",
"node", "expected_ops_reduction_pct", "detail"}] to each instance or cluster (docs/hotkeys.md).

examples:
  cachetop hotkeys redis://127.0.0.1:6379
  cachetop hotkeys --duration 10 --top 20 --json memcached://10.0.0.6:11211 | jq '.instances[0].keys'
  cachetop hotkeys --advice --duration 10 redis-cluster://10.0.0.5:7000
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cachetop.cli import add_target_arguments

    add_target_arguments(parser)
    parser.add_argument("--duration", metavar="SECONDS", default="5", help="how long to sample (default: 5)")
    parser.add_argument(
        "--top", type=int, default=10, metavar="N", help="keys to print per instance (default: 10)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--advice",
        action="store_true",
        help="also read each node's own counters (INFO before and after) and say what to do about each"
        " hot key: client-side caching, replica reads, split into N copies, move a slot, stampede fixes;"
        " a cluster target samples every master",
    )
    parser.add_argument(
        "--target-imbalance",
        type=float,
        default=DEFAULT_TARGET_IMBALANCE,
        metavar="X",
        help="with --advice: a split aims to bring its node to at most X times the cluster mean"
        f" (default: {DEFAULT_TARGET_IMBALANCE:g})",
    )


def run(args: argparse.Namespace) -> int:
    from cachetop.commands.common import config_from_args, flag_duration

    duration = flag_duration(args.duration, "--duration")
    assert duration is not None  # the flag has a default
    if args.top < 1:
        raise ConfigError("--top: must be at least 1")
    config = config_from_args(args)
    base = config.sections.get("hotkeys") or HotKeySettings()
    # One continuous sample as long as asked: the user chose to pay for it, and the omem
    # watchdog still stops MONITOR early if the server's buffer for it grows.
    settings = replace(
        base,
        k=max(args.top, base.k),
        counters=max(base.counters, args.top),
        monitor_on=duration,
        monitor_off=max(duration, 1.0),
        monitor_max_lines=0,
        watch_on=duration,
        watch_off=0.0,
        big_keys=False,
    )
    if args.advice:
        if args.target_imbalance <= 1.0:
            raise ConfigError("--target-imbalance: must be above 1 (1.2 = 20% above the cluster mean)")
        # Many keys listed, so a slot's lukewarm keys add up; advice and output keep to --top.
        wide = replace(settings, k=max(settings.k, ADVICE_KEYS), counters=max(settings.counters, ADVICE_KEYS))
        return _run_advice(args, config, wide, duration)
    collectors = [
        HotKeyCollector(inst, settings, window_s=duration + 1, timeout=config.timeout_of(inst))
        for inst in config.instances
    ]
    views, interrupted = asyncio.run(_sample(collectors, duration))
    views = [
        replace(v, keys=tuple(sorted(v.keys, key=lambda k: k.count, reverse=True)[: args.top])) for v in views
    ]
    if args.json:
        json.dump({"instances": [v.to_json() for v in views]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_tables(views)
    failed = any(v.status == "error" for v in views)
    return exit_code(interrupted, failed)


def _run_advice(args: argparse.Namespace, config: Any, settings: HotKeySettings, duration: float) -> int:
    from cachetop.commands.hotkeys_advice import build_groups, sample_groups
    from cachetop.commands.hotkeys_advice_report import analyse, group_json, print_group

    async def main() -> tuple[list[Any], bool]:
        with Interrupts() as ints:
            groups = await build_groups(config.instances, settings, duration, config.timeout_of)
            await sample_groups(groups, duration, ints.stop)
            return groups, ints.interrupted

    groups, interrupted = asyncio.run(main())
    results = [analyse(g, args.target_imbalance) for g in groups]
    if args.json:
        doc = {"instances": [group_json(g, r, args.top) for g, r in zip(groups, results, strict=True)]}
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from cachetop.commands.render_table import Output

        for group, result in zip(groups, results, strict=True):
            views = [n.view for n in group.nodes if n.view is not None]
            _print_tables([replace(v, keys=_top(v, args.top)) for v in views])
            out = Output(sys.stdout)
            print_group(out, group, result, args.target_imbalance)
            out.flush()
    failed = any(g.error or any(n.view is None or n.view.status == "error" for n in g.nodes) for g in groups)
    return exit_code(interrupted, failed)


def _top(view: HotKeysView, n: int) -> tuple[Any, ...]:
    return tuple(sorted(view.keys, key=lambda k: k.count, reverse=True)[:n])


async def _sample(collectors: list[HotKeyCollector], duration: float) -> tuple[list[HotKeysView], bool]:
    with Interrupts() as ints:
        try:
            for c in collectors:
                await c.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ints.stop.wait(), duration + 0.2)
            return [c.snapshot() for c in collectors], ints.interrupted
        finally:
            await asyncio.gather(*(c.stop() for c in collectors))


def _print_tables(views: list[HotKeysView]) -> None:
    from rich.text import Text

    from cachetop.commands.render_table import Column, Output
    from cachetop.util.safe_text import display_key

    out = Output(sys.stdout)  # rich tables on a terminal, plain full-width text in a pipe or file
    for view in views:
        title = Text(f"{display_key(view.name, out.name_max)}  ", style="bold")
        title.append(f"source: {view.source}", style="dim")
        if view.sampled_s:
            title.append(f"  sampled {view.sampled_s:.1f}s, {view.total_events} events", style="dim")
        if view.drop_rate:
            title.append(f"  dropped {view.drop_rate:.1%}", style="yellow")
        # hits/misses only where the source knows them (memcached watch), so 80 columns suffice.
        knows_hits = any(k.hits is not None for k in view.keys)
        counts = ("count" if view.unit == "ops" else view.unit, "ops/s", "share", "reads/writes")
        columns = [
            Column("#", right=True),
            Column("key", min_width=20),
            *(Column(c, right=True) for c in counts),
        ]
        if knows_hits:
            columns.append(Column("hits/misses", right=True))
        rows = []
        for rank, key in enumerate(view.keys, 1):
            cells: list[str | Text] = [
                str(rank),
                Text(key.display, style="bold red" if key.hot else ""),
                key.count_text,  # 18 (±15): Space-Saving may overcount
                "-" if key.ops_per_sec is None else f"{key.ops_per_sec:,.0f}",
                "-" if key.share is None else f"{key.share:.1%}",
                f"{key.reads:,}/{key.writes:,}",
            ]
            if knows_hits:
                cells.append(f"{key.hits or 0:,}/{key.misses or 0:,}")
            rows.append(cells)
        out.table(title, columns, rows)
        prefixes = [p for p in view.prefixes[:5] if p.share]
        if prefixes:
            line = Text("  prefixes: ", style="dim")
            line.append("  ".join(f"{p.display} {p.share:.0%}" for p in prefixes))
            out.line(line)
        if view.error:
            out.line(Text(f"  {display_key(view.error, 200)}", style="red"))
        elif not view.keys:
            out.line(Text("  no key traffic seen", style="dim"))
        elif not any(k.hot for k in view.keys) and view.min_share is not None:
            out.line(
                Text(f"  no hot keys (none has >= {view.min_share:g}% of the sampled traffic)", style="dim")
            )
    out.flush()

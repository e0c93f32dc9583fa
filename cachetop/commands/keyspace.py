"""`cachetop keyspace`: where the memory goes, what expires together, what sits idle, what would
compress; one budgeted walk per instance (cachetop/analysis/keyspace)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from cachetop.engine.configfile import ConfigError

HELP = "sample each keyspace: memory per prefix, expiry cliffs, idle keys, compression (table or --json)"
DESCRIPTION = """\
Walk each instance's keyspace once, on a budget, and say which prefixes hold the memory, which
keys expire in the same second, how much sits idle and what would compress.

Redis/Valkey: SCAN counts every key name per prefix (user:123:cart counts under user:*:cart);
--sample keys, spread over the prefixes so a small one is not lost, get the per-key calls (MEMORY
USAGE, PTTL, TYPE, OBJECT ENCODING, OBJECT IDLETIME or FREQ), and up to --values string values per
prefix are compressed with zstd, lz4 and gzip. Totals that rest on the sample are estimates with a
95% interval (±). Values are read under CLIENT NO-TOUCH where the server has it (7.2 and later);
older servers count those reads as a use of the key, and the report says how many.
Memcached: the LRU crawler's metadump lists every item: exact figures, no values read.

Cost: SCAN is most of it (about 1.5 µs of server time per name), so counting every name costs the
server about half of what `redis-cli --memkeys` does; --max-scan at 5% of the keys kept each
prefix's bytes within 3% for under 1/20 of it (bench/keyspace.py, a million keys).

Our reads are counted as cachetop's own traffic, so a dashboard watching the same server leaves
them out. One extra connection per instance, closed at the end. Ctrl-C stops the name count and
samples what was seen (estimates then scale from it); a second Ctrl-C stops at once. The last
report of each instance is kept in the state dir for the dashboard's Keyspace tab."""
EPILOG = """\
JSON: {"instances": [{"name", "kind", "source", "keys_total", "keys_sampled", "prefixes": [{"prefix",
"keys_est", "bytes_est", "bytes_ci95", "ttl", "idle", "compress"}], "cliffs": [{"at", "keys_est",
"prefixes"}], "idle": [{"over_s", "keys_est", "bytes_est"}], "big_keys": [{"key", "bytes", "type"}]}]};
`at` is a Unix time in seconds; key names are escaped as in `hotkeys --json`.

examples:
  cachetop keyspace redis://127.0.0.1:6379
  cachetop keyspace --sample 50000 --rate 50000 redis://10.0.0.5:6379
  cachetop keyspace --max-scan 100000 --json redis://10.0.0.5:6379 | jq '.instances[0].cliffs'
  cachetop keyspace memcached://10.0.0.6:11211
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cachetop.cli import add_target_arguments

    add_target_arguments(parser)
    parser.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="keys that get the per-key calls (default: 10000)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        metavar="OPS",
        help="at most OPS operations per second: each name SCAN returns and each per-key call counts one "
        "(default: 20000, as evict; 0: no limit)",
    )
    parser.add_argument(
        "--values",
        type=int,
        metavar="N",
        help="string values read per prefix for compression (default: 200; 0: read none)",
    )
    parser.add_argument(
        "--max-scan",
        type=int,
        metavar="N",
        help="stop counting names after N (default: all); counts then scale from the part walked",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="sample the same keys on every run with the same N (default: fresh)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _defaults(args: argparse.Namespace, config: Any) -> None:
    """Flags not given take the [keyspace] section's values (or the built-in defaults)."""
    from cachetop.analysis.keyspace.config import keyspace_settings

    settings = keyspace_settings(config)
    if args.sample is None:
        args.sample = settings.sample
    if args.rate is None:
        args.rate = settings.rate
    if args.values is None:
        args.values = settings.values


def _check(args: argparse.Namespace) -> None:
    if args.sample < 1:
        raise ConfigError("--sample: must be at least 1")
    if args.rate is not None and args.rate < 0:
        raise ConfigError("--rate: must be 0 (no limit) or positive")
    if args.values < 0:
        raise ConfigError("--values: must be 0 or more")
    if args.max_scan is not None and args.max_scan < 1:
        raise ConfigError("--max-scan: must be at least 1")


def run(args: argparse.Namespace) -> int:
    from cachetop.analysis.keyspace import save_report
    from cachetop.commands.common import config_from_args, exit_code, print_reports
    from cachetop.commands.keyspace_table import print_report
    from cachetop.commands.render_table import is_terminal

    config = config_from_args(args)
    _defaults(args, config)
    _check(args)
    reports, interrupted = asyncio.run(_analyse_all(config, args, show_bar=is_terminal(sys.stderr)))
    for report in reports:
        with contextlib.suppress(OSError):  # a read-only state dir costs the tab its history only
            save_report(config.settings.state_dir, report)
    failed = print_reports(reports, args.json, print_report)
    return exit_code(interrupted, failed)


async def _analyse_all(
    config: Any, args: argparse.Namespace, *, show_bar: bool
) -> tuple[list[dict[str, Any]], bool]:
    from cachetop.analysis.keyspace import KeyspaceError, analyse_instance
    from cachetop.commands.common import Interrupts

    reports: list[dict[str, Any]] = []
    with Interrupts("stopping the name count; sampling what was seen (Ctrl-C again to stop at once)") as ints:
        for inst in config.instances:
            if ints.interrupted and ints.stop.is_set() and reports:
                break
            with _bar(show_bar, inst.name) as progress:
                work = analyse_instance(
                    inst,
                    sample=args.sample,
                    rate=args.rate,
                    values_per_prefix=args.values,
                    progress=progress,
                    max_scan=args.max_scan,
                    seed=args.seed,
                    timeout=config.timeout_of(inst),
                    cancel=ints.stop,
                )
                try:
                    reports.append((await ints.run(work)).to_json())
                except KeyspaceError as exc:
                    reports.append(_failed(inst, str(exc)))
                except asyncio.CancelledError:
                    reports.append(_failed(inst, "stopped at once (second Ctrl-C)"))
                    break
    return reports, ints.interrupted


def _failed(inst: Any, error: str) -> dict[str, Any]:
    return {
        "name": inst.name,
        "kind": inst.target.kind,
        "source": "metadump" if inst.target.kind == "memcached" else "scan",
        "keys_total": None,
        "keys_scanned": 0,
        "keys_sampled": 0,
        "complete": False,
        "elapsed_s": 0.0,
        "error": error,
        "notes": [],
        "prefixes": [],
        "cliffs": [],
        "idle": [],
        "big_keys": [],
    }


@contextlib.contextmanager
def _bar(enabled: bool, name: str) -> Iterator[Callable[[Any], None] | None]:
    """A rich progress bar on stderr (a terminal only): names counted, then keys sampled."""
    from cachetop.commands.common import instance_progress

    with instance_progress(enabled, name, "connecting", total=None, counted=True) as show:
        if show is None:
            yield None
            return

        def update(p: Any) -> None:
            if p.phase in ("scanning", "metadump"):
                show(p.phase, completed=p.keys_scanned, total=p.keys_total_hint)
            elif p.phase == "sampling":
                show("sampling", completed=p.keys_sampled, total=p.keys_to_sample or None)
            else:
                show(p.phase)

        yield update

"""`cachetop evict`: remove keys safely (dry run first, confirmation, throttle, audit)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from cachetop.actions.audit import AuditLog, ReadOnlyError, check_writable
from cachetop.actions.console import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    add_action_arguments,
    cancel_on_interrupt,
    confirm,
    is_terminal,
    pick_instances,
    progress_bar,
)
from cachetop.actions.evict import DEFAULT_RATE, EvictRequest, EvictResult, RedisEvictor, summary
from cachetop.actions.memcached_evict import MemcachedEvictor
from cachetop.actions.redis_nodes import ActionError
from cachetop.cli import add_target_arguments
from cachetop.commands.common import config_from_args
from cachetop.config import Config, InstanceConfig
from cachetop.configfile import ConfigError
from cachetop.redact import scrub

HELP = "evict keys by name, glob pattern or prefix: dry run, confirmation, throttled, audited"
DESCRIPTION = (
    "Evict keys from Redis/Valkey (SCAN MATCH + pipelined UNLINK, every master of a cluster) or from\n"
    "a memcached pool (delete, or `md <key> I` with --invalidate). A dry run always comes first:\n"
    "without --yes a terminal is asked to confirm (typing the instance name above 1000 keys), and\n"
    "without --yes and without a terminal cachetop refuses. Ctrl-C stops after the batch in flight\n"
    "and reports exactly what was removed. Every run is appended to <state_dir>/audit.jsonl."
)
EPILOG = """\
examples:
  cachetop evict redis://127.0.0.1:6379 --pattern 'sess:*' --dry-run
  cachetop evict redis://127.0.0.1:6379 --pattern 'sess:*' --rate 5000 --yes --json
  cachetop evict -c cachetop.toml --instance cache-1 --prefix 'user:*:cart'
  cachetop evict memcached://10.0.0.1:11211 memcached://10.0.0.2:11211 --key user:42 --invalidate

exit status: 0 done (or nothing matched), 1 failed or cancelled part-way, 2 usage or config error,
3 refused (read-only, no confirmation).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--key", action="append", metavar="K", help="a key (repeat for several)")
    what.add_argument("--keys-file", metavar="FILE", help="keys to evict, one per line")
    what.add_argument("--pattern", metavar="P", help="a glob, as SCAN MATCH takes it (Redis/Valkey)")
    what.add_argument("--prefix", metavar="P", help="a prefix-tree node like 'user:*:cart' (Redis/Valkey)")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask (needed without a terminal)")
    parser.add_argument(
        "--invalidate", action="store_true", help="memcached: mark stale (`md <key> I`) instead of deleting"
    )
    parser.add_argument("--batch", type=int, metavar="N", help="keys per SCAN/UNLINK round trip")
    add_action_arguments(parser)


def _keys(args: argparse.Namespace) -> tuple[bytes, ...]:
    if args.keys_file:
        try:
            text = Path(args.keys_file).read_bytes()
        except OSError as exc:
            raise ConfigError(f"--keys-file: {exc.strerror or exc}: {args.keys_file}") from None
        return tuple(k.rstrip(b"\r") for k in text.split(b"\n") if k.strip())
    return tuple(k.encode() for k in args.key or ())


def _build(
    args: argparse.Namespace, config: Config, instances: list[InstanceConfig], cancel: threading.Event
) -> tuple[str, dict[str, object], Callable[..., EvictResult]]:
    """The action's label, what it acts on (for the audit log) and a runner(dry_run, progress)."""
    rate = DEFAULT_RATE if args.rate is None else args.rate
    if rate < 0:
        raise ConfigError("--rate: must be 0 (no limit) or positive")
    keys = _keys(args)
    if all(i.target.kind == "memcached" for i in instances):
        if not keys:
            raise ConfigError("memcached cannot list keys by pattern: give them with --key or --keys-file")
        timeout = config.timeout_of(instances[0])
        label = instances[0].name if len(instances) == 1 else f"pool of {len(instances)} memcached servers"
        mode = "invalidate" if args.invalidate else "delete"

        def run_memcached(dry_run: bool, progress: Callable[[EvictResult], None]) -> EvictResult:
            evictor = MemcachedEvictor(
                [i.target for i in instances],
                mode=mode,
                timeout=timeout,
                rate=rate,
                cancel=cancel,
                progress=progress,
            )
            return evictor.run(keys, dry_run=dry_run)

        what = EvictRequest(keys=keys).describe() | {"mode": mode}
        return label, what, run_memcached
    if args.invalidate:
        raise ConfigError("--invalidate is for memcached; Redis keys are unlinked")
    inst = instances[0]
    request = EvictRequest(
        keys=keys,
        pattern=args.pattern.encode() if args.pattern else None,
        prefix=args.prefix.encode() if args.prefix else None,
    )

    def run_redis(dry_run: bool, progress: Callable[[EvictResult], None]) -> EvictResult:
        evictor = RedisEvictor(
            inst,
            timeout=max(config.timeout_of(inst), 5.0),
            rate=rate,
            batch=args.batch,
            cancel=cancel,
            progress=progress,
        )
        return evictor.run(request, dry_run=dry_run)

    return inst.name, request.describe(), run_redis


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    instances = pick_instances(config, args.instance)
    audit = AuditLog(config.settings.state_dir)
    cancel = threading.Event()
    label, what, runner = _build(args, config, instances, cancel)
    record_inst = instances[0] if len(instances) == 1 else None
    base = {"what": what, "instances": [i.name for i in instances]}
    if not args.dry_run:
        try:
            for inst in instances:
                check_writable(inst, read_only=args.read_only, action="evict", config_path=config.path)
        except ReadOnlyError as exc:
            audit.record("evict", record_inst, outcome="refused", reason=str(exc), **base)
            print(f"cachetop: {exc}", file=sys.stderr)
            return EXIT_REFUSED
    show_bar = is_terminal(sys.stderr) and not args.json
    try:
        preview = None
        if args.dry_run or not args.yes or show_bar:
            preview = runner(True, lambda _r: None)
            if args.dry_run or preview.error:
                audit.record("evict", record_inst, outcome="dry-run", **base, **_counts(preview))
                return _report(args, preview, label)
            if preview.matched == 0:
                audit.record("evict", record_inst, outcome="nothing", **base, **_counts(preview))
                return _report(args, preview, label)
            print(summary(preview, label), file=sys.stderr)
            if not args.yes:
                if not is_terminal(sys.stdin):
                    reason = (
                        f"refusing to evict {preview.matched:,} keys without --yes: stdin is not a terminal"
                    )
                    audit.record("evict", record_inst, outcome="refused", reason=reason, **base)
                    print(f"cachetop: {reason}", file=sys.stderr)
                    return EXIT_REFUSED
                question = f"Evict {preview.matched:,} keys from {label}?"
                if not confirm(question, label, preview.matched, stdin=sys.stdin, out=sys.stderr):
                    audit.record("evict", record_inst, outcome="declined", **base, matched=preview.matched)
                    print("not confirmed: nothing was evicted", file=sys.stderr)
                    return EXIT_REFUSED
        total = preview.matched if preview else None
        with cancel_on_interrupt(cancel, sys.stderr), progress_bar(show_bar, "evicting", total) as update:
            result = runner(False, lambda r: update(r.matched, max(total or 0, r.matched) or None))
    except ActionError as exc:
        audit.record("evict", record_inst, outcome="failed", error=str(exc), **base)
        print(f"cachetop: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    outcome = "cancelled" if result.cancelled else "failed" if result.error else "done"
    audit.record("evict", record_inst, outcome=outcome, **base, **_counts(result))
    return _report(args, result, label)


def _counts(result: EvictResult) -> dict[str, object]:
    counts: dict[str, object] = {
        "dry_run": result.dry_run,
        "matched": result.matched,
        "evicted": result.evicted,
        "elapsed_s": round(result.elapsed_s, 3),
    }
    if result.evicted_by_node:
        counts["evicted_by_node"] = result.evicted_by_node
    if result.error:
        counts["error"] = result.error
    return counts


def _report(args: argparse.Namespace, result: EvictResult, label: str) -> int:
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        print(summary(result, label))
    if result.error:
        if args.json:
            print(f"cachetop: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if result.cancelled else EXIT_OK

"""`cachetop evict`: remove keys safely (dry run first, confirmation, throttle, audit)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from cachetop.actions.audit import KEY_LOG_LEN, AuditError, AuditLog, ReadOnlyError, check_writable
from cachetop.actions.console import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    Interruption,
    add_action_arguments,
    cancel_on_interrupt,
    confirm,
    is_terminal,
    pick_instances,
    progress_bar,
)
from cachetop.actions.evict import (
    DEFAULT_RATE,
    EvictRequest,
    EvictResult,
    RedisEvictor,
    node_lines,
    summary,
)
from cachetop.actions.memcached_evict import MemcachedEvictor
from cachetop.actions.redis_nodes import ActionError
from cachetop.cli import add_target_arguments
from cachetop.commands.common import config_from_args
from cachetop.commands.evict_idle import POOL, idle_over, memcached_idle
from cachetop.engine.config import Config, InstanceConfig
from cachetop.engine.configfile import ConfigError
from cachetop.util.redact import scrub
from cachetop.util.safe_text import display_key

HELP = "evict keys by name, glob pattern or prefix: dry run, confirmation, throttled, audited"
DESCRIPTION = (
    "Evict keys from Redis/Valkey (SCAN MATCH + pipelined UNLINK, every master of a cluster) or from\n"
    "a memcached pool (delete, or `md <key> I` with --invalidate). A dry run always comes first:\n"
    "without --yes a terminal is asked to confirm (typing the instance name above 1000 keys), and\n"
    "without --yes and without a terminal cachetop refuses. Every master of a cluster is checked\n"
    "before the first key goes. Ctrl-C, SIGTERM or SIGHUP stop after the batch in flight and report\n"
    "exactly what was removed. <state_dir>/audit.jsonl gets an intent line before the first key goes\n"
    "(cachetop refuses to start when it cannot be written) and an outcome line after the last."
)
EPILOG = """\
examples:
  cachetop evict redis://127.0.0.1:6379 --pattern 'sess:*' --dry-run
  cachetop evict redis://127.0.0.1:6379 --pattern 'sess:*' --rate 5000 --yes --json
  cachetop evict -c cachetop.toml --instance cache-1 --prefix 'user:*:cart'
  cachetop evict memcached://10.0.0.1:11211 memcached://10.0.0.2:11211 --key user:42 --invalidate
  cachetop evict redis://127.0.0.1:6379 --idle-over 7d --pattern 'report:*' --dry-run
  cachetop evict memcached://10.0.0.1:11211 memcached://10.0.0.2:11211 --idle-over 1d --yes

--idle-over D keeps only keys not read or written for at least D; every key is checked, so the
count is exact. Redis/Valkey: OBJECT IDLETIME (whole seconds), under an LRU or no-eviction policy
(under LFU the server keeps no idle time, and cachetop refuses). Memcached: each server's items
from `lru_crawler metadump all` (last access; a read refreshes it at most once a minute), matched
with --pattern as a shell glob, and removed on the server that holds them.

exit status: 0 done (or nothing matched), 1 failed, cancelled (Ctrl-C, SIGTERM, SIGHUP) or the
outcome could not be audited, 2 usage or config error, 3 refused before anything was removed
(read-only, no confirmation, audit log not writable), 130 stopped at once by a second signal.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--key", action="append", metavar="K", help="a key (repeat for several)")
    what.add_argument("--keys-file", metavar="FILE", help="keys to evict, one per line")
    what.add_argument(
        "--pattern", metavar="P", help="a glob, as SCAN MATCH takes it (memcached: with --idle-over)"
    )
    what.add_argument("--prefix", metavar="P", help="a prefix-tree node like 'user:*:cart' (Redis/Valkey)")
    parser.add_argument(
        "--idle-over",
        metavar="D",
        help="only keys idle for at least D, like 10s, 1h, 7d (with --pattern or --prefix, else every key)",
    )
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
    idle_over_s = idle_over(args)
    if not (keys or args.pattern or args.prefix or idle_over_s):
        raise ConfigError("say what to evict: --key, --keys-file, --pattern, --prefix or --idle-over")
    if idle_over_s is not None and keys:
        raise ConfigError("--idle-over goes with --pattern or --prefix (or alone: every key), not with keys")
    if all(i.target.kind == "memcached" for i in instances):
        if idle_over_s is not None:
            return memcached_idle(args, config, instances, cancel, rate, idle_over_s)
        if not keys:
            raise ConfigError("memcached cannot list keys by pattern: give them with --key or --keys-file")
        timeout = config.timeout_of(instances[0])
        label = instances[0].name if len(instances) == 1 else f"{POOL} {len(instances)} memcached servers"
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
    pattern = args.pattern.encode() if args.pattern else None
    request = EvictRequest(
        keys=keys,
        pattern=b"*" if idle_over_s is not None and not (pattern or args.prefix) else pattern,
        prefix=args.prefix.encode() if args.prefix else None,
        idle_over_s=idle_over_s,
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


class _Audit:
    """The audit log as evict uses it: an intent line that must land before anything is removed,
    and other lines whose failure is said loudly but does not undo what was done."""

    def __init__(self, log: AuditLog, inst: InstanceConfig | None, base: dict[str, object]) -> None:
        self.log, self.inst, self.base = log, inst, base
        self.run_id = os.urandom(6).hex()  # pairs an intent line with its outcome line
        self.failure: str | None = None

    def intent(self, **fields: object) -> None:
        """Raises AuditError: the caller must not start."""
        self.log.record("evict", self.inst, outcome="intent", run=self.run_id, **self.base, **fields)

    def note(self, outcome: str, **fields: object) -> bool:
        try:
            self.log.record("evict", self.inst, outcome=outcome, run=self.run_id, **self.base, **fields)
        except AuditError as exc:
            self.failure = str(exc)
            print(f"cachetop: {exc}: this {outcome} outcome is not in it", file=sys.stderr)
            return False
        return True


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    instances = pick_instances(config, args.instance)
    cancel = threading.Event()
    label, what, runner = _build(args, config, instances, cancel)
    record_inst = instances[0] if len(instances) == 1 else None
    audit = _Audit(
        AuditLog(config.settings.state_dir),
        record_inst,
        {"what": what, "instances": [i.name for i in instances]},
    )
    if not args.dry_run:
        try:
            for inst in instances:
                check_writable(inst, read_only=args.read_only, action="evict", config_path=config.path)
        except ReadOnlyError as exc:
            audit.note("refused", reason=str(exc))
            print(f"cachetop: {exc}", file=sys.stderr)
            return EXIT_REFUSED
    with cancel_on_interrupt(cancel, sys.stderr) as interruption:
        return _run(args, label, runner, audit, cancel, interruption)


def _run(
    args: argparse.Namespace,
    label: str,
    runner: Callable[..., EvictResult],
    audit: _Audit,
    cancel: threading.Event,
    interruption: Interruption,
) -> int:
    show_bar = is_terminal(sys.stderr) and not args.json
    latest: list[EvictResult] = []  # the running result, for a report after a second signal
    try:
        preview = None
        if args.dry_run or not args.yes or show_bar:
            preview = runner(True, lambda _r: None)
            if preview.cancelled:
                audit.note("cancelled", signal=interruption.signal, **_counts(preview))
                return _report(args, preview, label, audit)
            if args.dry_run or preview.error:
                audit.note("dry-run", **_counts(preview))
                return _report(args, preview, label, audit)
            if preview.matched == 0:
                audit.note("nothing", **_counts(preview))
                return _report(args, preview, label, audit)
            print(summary(preview, _where(preview, label)), file=sys.stderr)
            for line in _done_node_lines(preview):
                print(line, file=sys.stderr)
            if not args.yes:
                if not is_terminal(sys.stdin):
                    reason = (
                        f"refusing to evict {preview.matched:,} keys without --yes: stdin is not a terminal"
                    )
                    audit.note("refused", reason=reason)
                    print(f"cachetop: {reason}", file=sys.stderr)
                    return EXIT_REFUSED
                question = f"Evict {preview.matched:,} keys from {_where(preview, label)}?"
                interruption.at_prompt = True
                try:
                    confirmed = confirm(question, label, preview.matched, stdin=sys.stdin, out=sys.stderr)
                finally:
                    interruption.at_prompt = False
                if not confirmed or cancel.is_set():
                    audit.note("declined", matched=preview.matched, signal=interruption.signal)
                    print("not confirmed: nothing was evicted", file=sys.stderr)
                    return EXIT_REFUSED
        total = preview.matched if preview else None
        try:
            audit.intent(dry_run=False, matched=total)
        except AuditError as exc:
            print(f"cachetop: refused: {exc}; nothing was evicted", file=sys.stderr)
            if args.json:
                print(json.dumps(EvictResult(dry_run=False, error=str(exc)).as_json()))
            return EXIT_REFUSED

        def progress(result: EvictResult) -> None:
            latest[:1] = [result]
            update(result.matched, max(total or 0, result.matched) or None)

        with progress_bar(show_bar, "evicting", total) as update:
            result = runner(False, progress)
    except ActionError as exc:
        audit.note("failed", error=str(exc))
        failed = EvictResult(dry_run=args.dry_run, error=scrub(str(exc)))
        if args.json:
            print(json.dumps(failed.as_json()))
        print(f"cachetop: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:  # a second signal: stopped at once, mid-batch
        result = latest[0] if latest else EvictResult(dry_run=False)
        result.cancelled = True
        audit.note("interrupted", signal=interruption.signal, **_counts(result))
        _report(args, result, label, audit)
        return EXIT_INTERRUPTED
    outcome = "cancelled" if result.cancelled else "failed" if result.error else "done"
    audit.note(outcome, signal=interruption.signal, **_counts(result))
    return _report(args, result, label, audit)


def _counts(result: EvictResult) -> dict[str, object]:
    counts: dict[str, object] = {
        "dry_run": result.dry_run,
        "matched": result.matched,
        "evicted": result.evicted,
        "complete": result.complete,
        "elapsed_s": round(result.elapsed_s, 3),
    }
    if result.evicted_by_node:
        counts["evicted_by_node"] = result.evicted_by_node
    if result.node_reports:
        counts["nodes"] = {a: r.as_json() for a, r in result.node_reports.items()}
    if result.uncertain:
        counts["uncertain"] = result.uncertain
    if result.error:
        counts["error"] = result.error
    if result.examples:  # which keys, by name (escaped): the first few matched
        counts["examples"] = [display_key(k, KEY_LOG_LEN) for k in result.examples]
    return counts


def _where(result: EvictResult, label: str) -> str:
    """What a report says the keys were on: a cluster's run says how many masters it acted on
    (the instance's name alone, often a seed's address, read as if one node held every key)."""
    nodes = result.node_reports or dict.fromkeys(result.nodes)
    if len(nodes) < 2 or label.startswith(POOL):
        return label
    return f"{len(nodes)} masters of {label}"


def _done_node_lines(result: EvictResult) -> list[str]:
    """Every node a complete run on several acted on, by its own address, with its count (a run
    that did not complete has node_lines, which also say what failed)."""
    if len(result.node_reports) < 2:
        return []
    if result.dry_run:
        return [f"  on {', '.join(result.node_reports)}"]
    width = max(len(a) for a in result.node_reports)
    return [
        f"  {address:<{width}}  {report.evicted:,} evicted" for address, report in result.node_reports.items()
    ]


def _report(args: argparse.Namespace, result: EvictResult, label: str, audit: _Audit) -> int:
    # The terminal may be gone (SIGHUP): the audit log already has the outcome, so a failed
    # print must not turn into a traceback.
    with contextlib.suppress(OSError):
        if args.json:
            print(json.dumps(result.as_json()), flush=True)
        else:
            print(summary(result, _where(result, label)))
            for line in node_lines(result) or _done_node_lines(result):
                print(line)
            sys.stdout.flush()
        if result.error and args.json:
            print(f"cachetop: {result.error}", file=sys.stderr)
    if result.error or result.cancelled or audit.failure:
        return EXIT_FAILED
    return EXIT_OK

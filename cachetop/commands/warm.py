"""`cachetop warm`: fill a cache from a warming strategy (a plugin), stampede-safe and throttled."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from cachetop.actions.audit import AuditError, AuditLog, ReadOnlyError, check_writable
from cachetop.actions.console import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    add_action_arguments,
    cancel_on_interrupt,
    is_terminal,
    pick_instances,
    progress_bar,
)
from cachetop.actions.redis_nodes import ActionError
from cachetop.actions.warm import (
    DEFAULT_BATCH,
    DEFAULT_LOCK_TTL_S,
    DEFAULT_RATE,
    MAX_LOCK_TTL_S,
    MAX_TTL_S,
    MIN_LOCK_TTL_S,
    MIN_TTL_S,
    RedisWarmer,
    check_ttl,
    warm_summary,
)
from cachetop.actions.warm_sources import create_warmer
from cachetop.cli import add_target_arguments
from cachetop.commands.common import config_from_args
from cachetop.engine.config import InstanceConfig
from cachetop.engine.configfile import ConfigError, parse_duration
from cachetop.plugins import PluginFailed, PluginNotFound, discover, plugin_paths_of
from cachetop.util.redact import scrub
from cachetop.util.safe_text import display_key

HELP = "warm a Redis/Valkey instance from a strategy plugin (file, hotkeys-replay, your own)"
DESCRIPTION = (
    "Warm keys from a strategy: `file` (JSON lines of key, value, ttl), `hotkeys-replay` (hot keys\n"
    "re-fetched through a loader plugin) or any warmer plugin (`cachetop plugins` lists them).\n"
    "A lock per key (SET NX PX) means two warmers never fetch the same key; keys already in the\n"
    "cache are left alone unless --overwrite. Writes are pipelined within --rate keys/s."
)
EPILOG = """\
examples:
  cachetop warm redis://127.0.0.1:6379 --strategy file --file warm.jsonl
  cachetop warm -c cachetop.toml --instance cache-1 --strategy ecommerce-catalog --dry-run
  cachetop warm redis://127.0.0.1:6379 --plugin-path ./warmers --strategy my-warmer
  cachetop hotkeys --json redis://127.0.0.1:6379 > hot.json
  cachetop warm redis://127.0.0.1:6379 --strategy hotkeys-replay -o from=hot.json -o loader=popular-content
  cachetop warm -c cachetop.toml --instance cache-1 --predict --horizon 1h --strategy popular-content

exit status: 0 done, 1 failed or cancelled part-way, 2 usage, config or plugin error, 3 refused (read-only).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("--strategy", required=True, metavar="NAME", help="a warmer plugin, e.g. file")
    parser.add_argument(
        "--predict",
        action="store_true",
        help="warm the keys history predicts hot in the next bucket; --strategy gives their values",
    )
    parser.add_argument(
        "--horizon", metavar="DURATION", help="with --predict: every bucket that starts within this (e.g. 2h)"
    )
    parser.add_argument("--top", type=int, default=100, metavar="N", help="with --predict: keys per bucket")
    parser.add_argument("--file", metavar="FILE", help="for --strategy file: JSON lines of key, value, ttl")
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="K=V",
        help="an option for the strategy (repeat)",
    )
    parser.add_argument(
        "--plugin-path",
        action="append",
        default=[],
        metavar="DIR",
        help="another plugin folder, after the config's plugin_paths (repeat), as for `cachetop plugins`",
    )
    parser.add_argument("--ttl", metavar="DURATION", help="TTL for keys the strategy gives none (e.g. 1h)")
    parser.add_argument("--overwrite", action="store_true", help="rewrite keys that are already cached")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, metavar="N", help="keys per pipeline")
    parser.add_argument(
        "--lock-ttl",
        metavar="DURATION",
        help=f"how long a key's lock lives (default: {DEFAULT_LOCK_TTL_S:g}s)",
    )
    add_action_arguments(parser)


def _options(args: argparse.Namespace) -> dict[str, str]:
    options: dict[str, str] = {}
    for raw in args.option:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {raw!r}: write KEY=VALUE")
        options[key.strip()] = value
    if args.file:
        options["path"] = args.file
    return options


def _duration(value: str | None, flag: str, low: float = MIN_TTL_S, high: float = MAX_TTL_S) -> float | None:
    """A --ttl / --lock-ttl: a duration, finite and within bounds (1e400 is infinity: refused)."""
    if value is None:
        return None
    try:
        return check_ttl(parse_duration(value), flag, low, high)
    except ValueError as exc:
        text = str(exc)
        raise ConfigError(text if text.startswith(flag) else f"{flag}: {text}") from None


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    instances = pick_instances(config, args.instance)
    inst = instances[0]
    if len(instances) > 1 or inst.target.kind == "memcached":
        raise ConfigError("warm writes to one Redis/Valkey instance (memcached warming is not supported)")
    options = _options(args)
    audit = AuditLog(config.settings.state_dir)
    what = {
        "strategy": display_key(args.strategy, 60),
        "options": {k: display_key(v, 120) for k, v in options.items()},
    }
    if not args.dry_run:
        try:
            check_writable(inst, read_only=args.read_only, action="warm", config_path=config.path)
        except ReadOnlyError as exc:
            _note(audit, inst, "refused", reason=str(exc), what=what)
            print(f"cachetop: {exc}", file=sys.stderr)
            return EXIT_REFUSED
    registry = discover(plugin_paths_of(config) + [Path(p) for p in args.plugin_path])
    try:
        warmer = create_warmer(registry, args.strategy, options)
    except (PluginNotFound, PluginFailed, ValueError, OSError) as exc:
        text = exc.args[0] if isinstance(exc, PluginNotFound) and exc.args else str(exc)
        raise ConfigError(f"--strategy {args.strategy}: {text}") from None
    if args.predict:
        from cachetop.history.warm_cli import predicted_warmer

        horizon = _duration(args.horizon, "--horizon", 0.0, 366 * 86400.0)
        warmer, predicted = predicted_warmer(
            config, inst, warmer, horizon, _duration(args.ttl, "--ttl"), args.top
        )
        what.update(predicted)
    cancel = threading.Event()
    rate = DEFAULT_RATE if args.rate is None else args.rate
    runner = RedisWarmer(
        inst,
        warmer,
        timeout=max(config.timeout_of(inst), 5.0),
        rate=rate,
        batch=args.batch,
        lock_ttl_s=_duration(args.lock_ttl, "--lock-ttl", MIN_LOCK_TTL_S, MAX_LOCK_TTL_S)
        or DEFAULT_LOCK_TTL_S,
        default_ttl=_duration(args.ttl, "--ttl"),
        overwrite=args.overwrite,
        cancel=cancel,
    )
    show_bar = is_terminal(sys.stderr) and not args.json and not args.dry_run
    total = getattr(warmer, "total", None)
    try:
        with (
            cancel_on_interrupt(cancel, sys.stderr) as interruption,
            progress_bar(show_bar, "warming", total) as update,
        ):
            runner.progress = lambda r: update(r.planned, total)
            result = runner.run(dry_run=args.dry_run)
    except ActionError as exc:
        _note(audit, inst, "failed", error=str(exc), what=what)
        print(f"cachetop: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    outcome = (
        "dry-run"
        if args.dry_run
        else "cancelled"
        if result.cancelled
        else "failed"
        if result.error
        else "done"
    )
    fields = {**result.as_json(), "error": result.error, "signal": interruption.signal}
    noted = _note(audit, inst, outcome, what=what, **fields)
    if args.json:
        print(json.dumps(result.as_json()))
        if result.error:
            print(f"cachetop: {scrub(result.error)}", file=sys.stderr)
    else:
        print(scrub(warm_summary(result, inst.name)))
    return EXIT_FAILED if result.cancelled or result.error or not noted else EXIT_OK


def _note(audit: AuditLog, inst: InstanceConfig, outcome: str, **fields: object) -> bool:
    """The outcome line; when the log cannot be written, one line says so (no traceback)."""
    try:
        audit.record("warm", inst, outcome=outcome, **fields)
    except AuditError as exc:
        print(f"cachetop: {exc}: this {outcome} outcome is not in it", file=sys.stderr)
        return False
    return True

"""Argument parsing and dispatch; no logic of its own.

`cachetop [TARGET...]` opens the dashboard; `cachetop NAME ...` runs cachetop/commands/NAME.py,
which provides HELP, add_arguments(parser) and run(args) -> exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import ModuleType

from cachetop import __version__
from cachetop.engine.configfile import ConfigError
from cachetop.util.redact import ScrubFilter, scrub
from cachetop.util.safe_text import EscapeControlsFilter, display_key, escape_controls

SUBCOMMANDS = (
    "snapshot",
    "config",
    "demo",
    "hotkeys",
    "keyspace",
    "daemon",
    "alerts",
    "evict",
    "warm",
    "plugins",
    "replay",
    "trends",
    "sizing",
    "serve",
    "rules",
)

EPILOG = """\
targets:
  redis://[user:password@]host:port[/db]   rediss://…  (TLS, certificate verified)
  valkey://host:port                       memcached://host:port
  redis-cluster://seed1:port,seed2:port    every node, found from any live seed
  redis-sentinel://host:26379/MASTER       follows the current master
  With no target, cachetop reads --config, then $CACHETOP_CONFIG, then ./cachetop.toml, then
  $XDG_CONFIG_HOME/cachetop/config.toml; with none of these it watches redis://127.0.0.1:6379 and
  memcached://127.0.0.1:11211.

examples:
  cachetop                                   the dashboard, on the config file or the defaults
  cachetop redis://10.0.0.5:6379 memcached://10.0.0.6:11211
  cachetop snapshot --json redis://127.0.0.1:6379
  cachetop config check cachetop.toml
  cachetop demo                              local servers with a realistic workload
  cachetop hotkeys --duration 10 redis://127.0.0.1:6379
  cachetop daemon -c cachetop.toml --metrics-port 9150
  cachetop --source prometheus://prom:9090   the fleet many daemons export, read from Prometheus
  CACHETOP_TOKEN=… cachetop --attach http://127.0.0.1:9150   a daemon's view, no polling (docs/api.md)

exit status: 0 ok, 1 an instance did not answer (snapshot), 2 usage or config error.
"""


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"cachetop.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"cachetop.commands.{name}":
            return None
        raise


def add_target_arguments(parser: argparse.ArgumentParser, *, nargs: str = "*") -> None:
    """Targets and the options every monitoring command shares."""
    parser.add_argument("targets", nargs=nargs, metavar="TARGET", help="instance URLs (see below)")
    parser.add_argument("-c", "--config", metavar="FILE", help="TOML config file")
    parser.add_argument(
        "--interval", metavar="DURATION", help='poll interval, e.g. "1s" (default: 1s; at most the window)'
    )
    parser.add_argument("--timeout", metavar="DURATION", help='poll timeout, e.g. "2s" (default: 2s)')
    parser.add_argument(
        "--light",
        action="store_true",
        help='no hot-key sampling: 2 connections per instance, polls only (as [settings] profile = "light")',
    )


def build_dashboard_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cachetop",
        description="top for caches: watch Redis, Valkey and Memcached instances live.",
        epilog=EPILOG + "\ncommands:\n" + _commands_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_target_arguments(parser)
    parser.add_argument("--window", metavar="DURATION", help="window for rates and ratios (default: 10s)")
    parser.add_argument(
        "--read-only", action="store_true", help="refuse every destructive action (evict, warm)"
    )
    parser.add_argument("--theme", choices=("dark", "light"), help="colour theme (default: dark)")
    parser.add_argument(
        "--record", metavar="FILE", help="record every snapshot to FILE for `cachetop replay`"
    )
    parser.add_argument(
        "--source",
        metavar="URL",
        help="read the fleet from Prometheus instead of polling: prometheus://HOST:9090[?match=LABELS]"
        " (see docs/scale.md)",
    )
    from cachetop.commands.attach import add_attach_arguments

    add_attach_arguments(parser)
    parser.add_argument("-V", "--version", action="version", version=f"cachetop {__version__}")
    return parser


def _commands_help() -> str:
    lines = []
    for name in SUBCOMMANDS:
        module = _load(name)
        if module is not None:
            lines.append(f"  {name:<12} {getattr(module, 'HELP', '')}")
    lines.append("  Run `cachetop COMMAND --help` for a command's options.")
    return "\n".join(lines)


def build_subcommand_parser(name: str, module: ModuleType) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"cachetop {name}",
        description=getattr(module, "DESCRIPTION", getattr(module, "HELP", "")),
        epilog=getattr(module, "EPILOG", None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    return parser


def _configure_logging() -> None:
    level = os.environ.get("CACHETOP_LOG", "WARNING").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.WARNING), format="%(levelname)s %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(ScrubFilter())  # secrets first: a secret may hold a control character
        handler.addFilter(EscapeControlsFilter())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _configure_logging()
    try:
        if argv and argv[0] in SUBCOMMANDS:
            name = argv[0]
            module = _load(name)
            if module is None:
                print(f"cachetop: `{name}` is not available in this build", file=sys.stderr)
                return 2
            args = build_subcommand_parser(name, module).parse_args(argv[1:])
            return int(module.run(args) or 0)
        args = build_dashboard_parser().parse_args(argv)
        from cachetop.commands import dashboard

        return dashboard.run(args)
    except ConfigError as exc:
        # Messages quote names already escaped; a raw control character would be a bug's.
        print(f"cachetop: {escape_controls(scrub(str(exc)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `cachetop snapshot | head`: the reader left; say nothing.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        return 0
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    except Exception as exc:  # the last line of defence: a person gets one line, never a traceback
        logging.getLogger("cachetop").debug("unexpected error", exc_info=True)
        print(
            f"cachetop: unexpected error: {type(exc).__name__}: {display_key(scrub(str(exc)), 200)} "
            "(run with CACHETOP_LOG=debug for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""`cachetop demo`: local redis-server and memcached with a realistic workload, and the dashboard."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

HELP = "start local redis-server and memcached with a realistic workload and watch them"
DESCRIPTION = """\
Start redis-server and memcached on free loopback ports in a temp dir, drive a realistic
workload (Zipf key popularity with a few hot keys, a miss-heavy phase, an eviction phase under
a small maxmemory, a cold start) and open the dashboard on them. Everything is stopped when
you quit, on Ctrl-C, and on a crash. Needs redis-server and memcached installed.

The servers are throwaway, so the demo is writable: try `e` on the Hot keys tab (dry run and
confirmation first, as on a real fleet). Its audit log lives in a temp dir and goes with it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rate", type=int, default=1500, metavar="OPS", help="operations/s per instance (default 1500)"
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="poll interval (default 1)"
    )
    parser.add_argument("--theme", choices=("dark", "light"), help="colour theme (default: dark)")
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="refuse evict (by default the demo's throwaway servers are writable, to try it on)",
    )


def run(args: argparse.Namespace) -> int:
    from cachetop.engine.configfile import ConfigError
    from cachetop.servers import ServerNotInstalled

    if args.rate < 1 or args.interval <= 0:
        raise ConfigError("--rate and --interval must be positive")
    from cachetop.engine.config import Settings, window_problem

    problem = window_problem(Settings(interval=args.interval))  # the demo's window is the default
    if problem:
        raise ConfigError(f"--interval: {problem}")
    try:
        return run_demo(args)
    except ServerNotInstalled as exc:
        raise ConfigError(str(exc)) from None


def run_demo(args: argparse.Namespace) -> int:
    """Servers + workload (cachetop/demo.py) + dashboard. Here, not in demo.py: the core never
    imports the TUI (tests/unit/test_import_graph.py)."""
    from cachetop.demo import DemoFleet
    from cachetop.tui.app import CachetopApp
    from cachetop.tui.run import run_app
    from cachetop.util.terminal import screen_on_terminal

    print("cachetop demo: starting redis-server and memcached on free loopback ports…", file=sys.stderr)
    # SIGTERM and SIGHUP before the dashboard is up must also clean up: make them exceptions.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    with DemoFleet(ops_per_sec=args.rate) as fleet:
        config = fleet.config(interval=args.interval)
        # Writable: the throwaway servers are the place to try evict (dry run and confirmation
        # as everywhere); --read-only refuses it, as on a real fleet.
        read_only = bool(getattr(args, "read_only", False))
        app = CachetopApp(config, theme=getattr(args, "theme", None), read_only=read_only)
        app.sub_title = "demo · read-only" if read_only else "demo"
        with screen_on_terminal():  # `2>err.log`: the screen on the terminal, only log lines in the file
            return asyncio.run(run_app(app, config))


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt

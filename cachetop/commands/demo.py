"""`cachetop demo`: local redis-server and memcached with a realistic workload, and the dashboard."""

from __future__ import annotations

import argparse

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
    from cachetop.demo import run as run_demo
    from cachetop.engine.configfile import ConfigError
    from cachetop.servers import ServerNotInstalled

    if args.rate < 1 or args.interval <= 0:
        raise ConfigError("--rate and --interval must be positive")
    try:
        return run_demo(args)
    except ServerNotInstalled as exc:
        raise ConfigError(str(exc)) from None

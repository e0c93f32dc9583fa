"""`cachetop [TARGET...]`: the dashboard. The TUI lives in cachetop/tui and is imported lazily."""

from __future__ import annotations

import argparse
import sys

from cachetop.commands.common import config_from_args


def run(args: argparse.Namespace) -> int:
    if getattr(args, "attach", None):
        from cachetop.commands.attach import run_attached

        return run_attached(args)
    if getattr(args, "source", None):
        from cachetop.commands import dashboard_prometheus

        return dashboard_prometheus.run(args)
    config = config_from_args(args)
    try:
        from cachetop.tui.run import run_dashboard
    except ImportError:
        print(
            "cachetop: the dashboard is not available in this build; try `cachetop snapshot`", file=sys.stderr
        )
        return 2
    from cachetop.util.terminal import screen_on_terminal

    with screen_on_terminal():  # `2>err.log`: the screen on the terminal, only log lines in the file
        return run_dashboard(config, args)

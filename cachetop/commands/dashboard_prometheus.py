"""`cachetop --source prometheus://HOST:PORT[?match=LABELS]`: the dashboard on Prometheus.

The fleet that any number of daemons export, read back with PromQL (sources/prometheus.py). No
server is polled from here, so nothing that needs a live connection (hot keys, slowlog, clients,
evict, warm) runs: the detail view names the daemon that owns each instance, to `--attach` to.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from cachetop.commands.common import flag_duration
from cachetop.engine.config import Config, Settings
from cachetop.engine.configfile import ConfigError
from cachetop.sources.prometheus import DEFAULT_INTERVAL_S, PrometheusSource
from cachetop.sources.promql import PromError

NOTICE = (
    "Reading Prometheus: hot keys, slowlog, clients and actions need the daemon that owns an"
    " instance (its detail view's facts: cachetop --attach http://DAEMON)."
)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "targets", None) or getattr(args, "config", None):
        raise ConfigError("--source: give either targets/--config or --source, not both")
    if getattr(args, "record", None):
        raise ConfigError(
            "--record: with --source, Prometheus already keeps the history; record where the numbers are"
            " made: cachetop daemon --record FILE"
        )
    if getattr(args, "window", None):
        raise ConfigError(
            "--window: with --source, the rates are the daemons' own, over their [settings] window"
        )
    interval = flag_duration(getattr(args, "interval", None), "--interval") or DEFAULT_INTERVAL_S
    try:
        source = PrometheusSource(args.source, interval=interval)
    except PromError as exc:
        raise ConfigError(str(exc)) from None
    try:
        from cachetop.tui.app import CachetopApp
        from cachetop.tui.run import run_on_source
    except ImportError:
        print("cachetop: the dashboard is not available in this build", file=sys.stderr)
        return 2
    config = Config(path=None, settings=Settings(interval=interval, window=max(interval, 10.0)), instances=())
    app = CachetopApp(config, monitor=source, theme=getattr(args, "theme", None), read_only=True)
    app.sub_title = f"prometheus {source.url.where}"
    app.say(NOTICE)
    from cachetop.util.terminal import screen_on_terminal

    try:
        with screen_on_terminal():
            return asyncio.run(run_on_source(app, config, source))
    except PromError as exc:  # the first read failed: nothing to show
        raise ConfigError(str(exc)) from None

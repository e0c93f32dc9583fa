"""`cachetop daemon`: the Monitor and the alert engine without a screen, for systemd."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from cachetop.alerts.service import AlertService, AlertsLocked
from cachetop.config import Config, resolve_config
from cachetop.configfile import ConfigError
from cachetop.monitor import Monitor

HELP = "watch and alert headless (for systemd): one log line per event, stops on SIGTERM"
DESCRIPTION = """\
Run the monitor and the alert engine without a screen. Rules and channels come from the config
file ([[rule]], [channel.NAME], [alerts]); notifications go through the outbox in
[settings] state_dir, so a restart delivers what was still queued. Logs go to stderr, one line
per event (state changes, deliveries, retries, failures). SIGTERM or SIGINT stops it cleanly:
a message being sent is finished and recorded first."""
EPILOG = """\
examples:
  cachetop daemon -c /etc/cachetop/cachetop.toml
  CACHETOP_LOG=debug cachetop daemon -c cachetop.toml

exit status: 0 stopped by a signal, 1 alerts already handled by another process, 2 config error.
"""

log = logging.getLogger("cachetop.daemon")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", metavar="FILE", help="TOML config file (default: the usual search)")


def configure_logging() -> None:
    """One line per event: time, level, source, message. The CLI's scrubbing filter stays on."""
    root = logging.getLogger()
    root.setLevel(getattr(logging, os.environ.get("CACHETOP_LOG", "INFO").upper(), logging.INFO))
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        handler.setFormatter(formatter)


def run(args: argparse.Namespace) -> int:
    config = resolve_config([], args.config)
    if not config.path:
        raise ConfigError("daemon: no config file found (give -c FILE with [[instance]] and [[rule]] tables)")
    configure_logging()
    try:
        return asyncio.run(serve(config))
    except AlertsLocked as exc:
        log.error("%s", exc)
        return 1


async def serve(config: Config, stop: asyncio.Event | None = None) -> int:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AlertService(config) as alerts, Monitor(config) as monitor:
        unsubscribe = alerts.attach(monitor)
        log.info(
            "started: pid %d, %d instance(s), %d rule(s), %d channel(s), state in %s",
            os.getpid(),
            len(config.instances),
            len(alerts.rules),
            len(alerts.channels),
            config.settings.state_dir,
        )
        if not alerts.channels:
            log.warning("no [channel.NAME] tables: alerts are logged here but sent nowhere")
        await stop.wait()
        unsubscribe()
        log.info("stopping: finishing deliveries in progress")
    log.info("stopped")
    return 0

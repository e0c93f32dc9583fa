"""`cachetop daemon`: the Monitor and the alert engine without a screen, for systemd."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from typing import Any

from cachetop.alerts.service import AlertService, AlertsLocked
from cachetop.commands import daemon_scale
from cachetop.engine.config import Config, resolve_config
from cachetop.engine.configfile import ConfigError
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.engine.shards import ShardSpec
from cachetop.exporters.outputs import add_output_arguments, attach_outputs

HELP = "watch and alert headless (for systemd): one log line per event, stops on SIGTERM"
DESCRIPTION = """\
Run the monitor and the alert engine without a screen. Rules and channels come from the config
file ([[rule]], [channel.NAME], [alerts]); notifications go through the outbox in
[settings] state_dir, so a restart delivers what was still queued (a full state dir delays
no notification: the outbox carries on in memory, says so, and is written back when space
returns). With a [history] table it keeps each instance's hot keys, prefixes and metrics per
hour in the state dir (`cachetop trends` and the dashboard read it), and with [warm] predict = true
it warms the keys predicted for each coming hour through a warmer plugin (docs/trends.md).
One daemon per state_dir: a second one exits with status 1. Logs go to stderr, one line
per event (state changes, deliveries, retries, failures). SIGTERM or SIGINT stops it cleanly:
a message being sent is finished and recorded first."""
EPILOG = """\
examples:
  cachetop daemon -c /etc/cachetop/cachetop.toml
  CACHETOP_LOG=debug cachetop daemon -c cachetop.toml
  cachetop daemon -c cachetop.toml --metrics-port 9150 --record /var/lib/cachetop/today.db
  cachetop daemon -c cachetop.toml --metrics-port 9150   # with [settings] api_token: /api/v1 (docs/api.md)
  cachetop daemon -c fleet.toml --shard 0/2 --metrics-port 9150     # one of two daemons
  cachetop daemon -c fleet.toml --shard 1/2 --list                  # what the other one polls

sharding: every daemon reads the same config; --shard I/N polls the targets whose rendezvous hash
of the instance name picks daemon I of N (a cluster or sentinel target stays whole), and puts
daemon_shard="I/N" on every series of its /metrics. Adding daemon N moves about 1/(N+1) of the
targets. Each shard keeps its state in STATE_DIR/shard-I-of-N. [inventory] files (Prometheus
file_sd JSON or YAML) are re-read when they change (docs/alerts.md, "Many daemons").

exit status: 0 stopped by a signal, 1 alerts already handled by another process, 2 config error.
"""

log = logging.getLogger("cachetop.daemon")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", metavar="FILE", help="TOML config file (default: the usual search)")
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="poll only this daemon's share of the targets: daemon I (0 to N-1) of N, e.g. 0/2",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="print the targets this daemon (or --shard) would poll, one per line, and exit",
    )
    add_output_arguments(parser)
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="refuse actions (evict) that attached dashboards send to /api/v1/actions (docs/api.md)",
    )


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
    shard = daemon_scale.parse_shard(args.shard)
    if args.list:
        return daemon_scale.list_targets(config, shard)
    configure_logging()
    try:
        return asyncio.run(
            serve(
                config,
                metrics_port=args.metrics_port,
                metrics_addr=args.metrics_addr,
                record=args.record,
                read_only=bool(getattr(args, "read_only", False)),
                shard=shard,
            )
        )
    except AlertsLocked as exc:
        log.error("%s", exc)
        return 1


def wants_hotkeys(config: Config, rules: Sequence[Any]) -> bool:
    """Hot keys cost the servers something (MONITOR sampling), so the daemon runs them only when
    asked: a [hotkeys] or [history] table or [warm] predict = true (history is made of them), or a
    rule on stampede_events."""
    return (
        "hotkeys" in config.sections
        or "history" in config.sections
        or bool(getattr(config.sections.get("warm"), "predict", False))
        or any(r.metric == "stampede_events" for r in rules)
    )


async def serve(
    config: Config,
    stop: asyncio.Event | None = None,
    *,
    metrics_port: int | None = None,
    metrics_addr: str = "0.0.0.0",
    record: str | None = None,
    read_only: bool = False,
    shard: ShardSpec | None = None,
) -> int:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    config = daemon_scale.for_shard(config, shard)
    # This shard's [[instance]] tables; the inventory watcher adds the files' targets (daemon_scale).
    async with (
        AlertService(config) as alerts,
        Monitor(daemon_scale.monitor_config(config, shard)) as monitor,
        daemon_scale.watch_inventory(monitor, config, shard),
    ):
        unsubscribe = alerts.attach(monitor)
        hotkeys = wants_hotkeys(config, alerts.rules)
        log.info(
            "started: pid %d, %d instance(s), %d rule(s), %d channel(s), hot keys %s, state in %s",
            os.getpid(),
            len(monitor.pollers),
            len(alerts.rules),
            len(alerts.channels),
            "on" if hotkeys else "off",
            config.settings.state_dir,
        )
        if not alerts.channels:
            log.warning("no [channel.NAME] tables: alerts are logged here but sent nowhere")
        async with (
            LiveSources(config, monitor, hotkeys=hotkeys, alerts=False),
            attach_outputs(
                monitor,
                alerts,
                metrics_port=metrics_port,
                metrics_addr=metrics_addr,
                record=record,
                config=config,
                read_only=read_only,
            ) as outputs,  # fmt: skip
        ):
            daemon_scale.label_exporter(outputs, shard)
            await stop.wait()
        unsubscribe()
        log.info("stopping: finishing deliveries in progress")
    log.info("stopped")
    return 0

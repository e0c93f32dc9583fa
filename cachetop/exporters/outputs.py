"""--metrics-port and --record for the daemon (and --record for the dashboard), in one place.

    add_output_arguments(parser)               # in add_arguments
    async with attach_outputs(source, alerts, metrics_port=args.metrics_port, record=args.record):
        await stop.wait()

Both subscribe to a Source (engine/source.py; the Monitor in the daemon and the dashboard): the
exporter keeps the latest Snapshot for scrapes, the recorder appends each Snapshot to its file.
Both are closed on the way out, also on errors.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from cachetop.engine.configfile import ConfigError
from cachetop.engine.source import Source
from cachetop.exporters.prometheus import PrometheusExporter
from cachetop.exporters.recorder import Recorder, RecordingError

log = logging.getLogger("cachetop.exporters")


def add_output_arguments(parser: argparse.ArgumentParser, *, metrics: bool = True) -> None:
    if metrics:
        parser.add_argument(
            "--metrics-port",
            type=int,
            metavar="PORT",
            help="serve Prometheus metrics on http://ADDR:PORT/metrics (e.g. 9150)",
        )
        parser.add_argument(
            "--metrics-addr", default="0.0.0.0", metavar="ADDR", help="address to serve metrics on"
        )
    parser.add_argument(
        "--record", metavar="FILE", help="record every snapshot to FILE for `cachetop replay`"
    )


@contextlib.asynccontextmanager
async def attach_outputs(
    source: Source,
    alerts: Any = None,
    *,
    metrics_port: int | None = None,
    metrics_addr: str = "0.0.0.0",
    record: str | None = None,
    config: Any = None,
    read_only: bool = False,
) -> AsyncIterator[dict[str, Any]]:
    """Subscribes the exporter and/or recorder to `source`; yields {"exporter": …, "recorder": …}.
    With `config` (the daemon's), [settings] api_token turns on /api/v1 on the metrics port, and
    api_tls_cert/api_tls_key TLS (exporters/api_setup.py)."""
    attached: dict[str, Any] = {}
    undo: list[Any] = []
    try:
        if record:
            try:
                recorder = Recorder.create(record)
            except RecordingError as exc:
                raise ConfigError(f"--record: {exc}") from None
            attached["recorder"] = recorder
            undo.append(source.subscribe(recorder.on_snapshot))
            log.info("recording snapshots to %s", record)
        if metrics_port is not None:
            from cachetop.exporters.api_setup import api_for

            api, ssl_context = api_for(config, source, alerts, record=record, read_only=read_only)
            exporter = PrometheusExporter(alerts, api=api, ssl=ssl_context)
            try:
                port = exporter.serve(metrics_port, metrics_addr)
            except OSError as exc:
                raise ConfigError(f"--metrics-port {metrics_port}: cannot listen ({exc.strerror})") from None
            attached["exporter"] = exporter
            undo.append(source.subscribe(exporter.on_snapshot))
            if api is not None:
                undo.append(source.subscribe(api.on_snapshot))
            scheme = "https" if ssl_context is not None else "http"
            log.info("Prometheus metrics on %s://%s:%d/metrics", scheme, metrics_addr, port)
            if api is not None:
                log.info(
                    "API for attached viewers on %s://%s:%d/api/v1/ (token required)",
                    scheme,
                    metrics_addr,
                    port,
                )
        yield attached
    finally:
        for unsubscribe in undo:
            unsubscribe()
        if "exporter" in attached:
            attached["exporter"].close()
        if "recorder" in attached:
            attached["recorder"].close()

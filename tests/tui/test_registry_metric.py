"""One MetricInfo registered in the test, and nothing else changed: the new metric shows in the
overview columns, the detail view (summary line and a chart), `snapshot --json` and its table,
Prometheus, health colours and alert rule validation, computed from a real Redis's numbers.

The metric is maxmemory in units of 8 MiB: with `CONFIG SET maxmemory 100mb` it is exactly 12.5.
"""

from __future__ import annotations

import asyncio
import io
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.alerts.rules import Rule
from cachetop.cli import main
from cachetop.commands.render_table import Output, print_snapshot
from cachetop.engine.config import Config, InstanceConfig, Settings, load_config, parse_target
from cachetop.engine.configfile import ConfigError
from cachetop.engine.monitor import Monitor
from cachetop.exporters.prometheus import PrometheusExporter
from cachetop.metrics.info import ChartSpec, ColumnSpec, Levels, MetricInfo
from cachetop.metrics.inputs import MetricInputs
from cachetop.metrics.registry import METRICS, register, unregister
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from cachetop.tui.columns import layout
from cachetop.tui.health import Health
from cachetop.tui.widgets.chart import Chart
from tests.tui.helpers import cell, open_detail, text, until

NAME = "test_backlog"


def _backlog(m: MetricInputs) -> float | None:
    limit = m.gauge("memory_max")
    return limit / (8 << 20) if limit else None


@pytest.fixture
def backlog() -> Iterator[MetricInfo]:
    info = register(
        MetricInfo(
            NAME,
            "units",
            "maxmemory in 8 MiB units (a metric the test registers).",
            "lower",
            "test_backlog_units",
            label="backlog",
            short="backlog",
            format=lambda v: "–" if v is None else f"{v:.1f}",
            levels=Levels(10.0, 20.0),
            column=ColumnSpec("backlog", 7, 7),
            chart=ChartSpec("backlog", "units", "accent"),
            summary=True,
            compute=_backlog,
        )
    )
    yield info
    unregister(NAME)
    assert NAME not in METRICS


@pytest.fixture
def capped(redis: LocalServer) -> LocalServer:
    client = redis_py.Redis(port=redis.port)
    client.config_set("maxmemory", str(100 << 20))
    client.close()
    return redis


def _config(server: LocalServer) -> Config:
    return Config(
        path=None,
        settings=Settings(interval=0.2, window=30.0, timeout=1.0),
        instances=(InstanceConfig(name="r1", target=parse_target(server.url)),),
    )


def test_snapshot_json_table_and_rule_validation(
    backlog: MetricInfo, capped: LocalServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["snapshot", "--json", "--window", "0.3", capped.url]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["instances"][0]["metrics"][NAME] == 12.5

    assert main(["snapshot", "--window", "0.3", capped.url]) == 0
    header, row = capsys.readouterr().out.splitlines()[1:3]  # plain text: title, header, rows
    assert header.split()[-1] == "backlog"
    assert row.split()[-1] == "12.5"

    path = tmp_path / "cachetop.toml"
    rule = f'[[rule]]\nname = "deep"\nmetric = "{NAME}"\nop = ">"\nthreshold = 12\n'
    path.write_text(f'[[instance]]\nname = "r1"\nurl = "{capped.url}"\n\n{rule}')
    (parsed,) = load_config(path).sections["rule"]
    assert (parsed.metric, parsed.op, parsed.threshold) == (NAME, ">", 12.0)
    path.write_text(f'[[instance]]\nname = "r1"\nurl = "{capped.url}"\n\n{rule.replace(NAME, "no_such")}')
    with pytest.raises(ConfigError, match=f"{NAME}"):  # the allowed names list it
        load_config(path)


async def test_overview_detail_prometheus_health_and_rules(backlog: MetricInfo, capped: LocalServer) -> None:
    assert [c.key for c in layout(160)][-3:] == ["backlog", "trend", "note"]
    config = _config(capped)
    exporter = PrometheusExporter()
    port = exporter.serve(0, "127.0.0.1")
    try:
        async with Monitor(config) as mon:
            unsubscribe = mon.subscribe(exporter.on_snapshot)
            app = CachetopApp(config, monitor=mon)
            async with app.run_test(size=(160, 40)):
                await until(lambda: cell(app, "r1", "backlog") == "12.5", what="overview column shows 12.5")
                inst = mon.latest.by_name("r1")
                assert Health().level(inst, NAME) == "warn"  # between warn_at 10 and bad_at 20
                rule = Rule(name="deep", metric=NAME, op=">", threshold=12.0)
                assert rule.value_of(inst) == 12.5 and rule.breaches(12.5)

                body = await asyncio.to_thread(
                    lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
                )
                lines = [
                    ln for ln in body.decode().splitlines() if ln.startswith("cachetop_test_backlog_units{")
                ]
                assert len(lines) == 1 and 'cache_instance="r1"' in lines[0]
                assert lines[0].endswith(" 12.5")

                await open_detail(app, "r1")
                await until(lambda: "backlog 12.5" in text(app), what="summary line shows backlog 12.5")
                chart = app.screen.query_one("#chart-backlog", Chart)
                assert chart.title == "backlog"
                await until(lambda: chart.series and 12.5 in chart.series[0].values, what="chart series")
                assert chart.series[0].label == "units"
            unsubscribe()
    finally:
        exporter.close()


def test_snapshot_table_output_for_a_known_snapshot(backlog: MetricInfo) -> None:
    from cachetop.model import InstanceMetrics, Snapshot, Status

    inst = InstanceMetrics("a", "redis", "127.0.0.1:1", Status.UP, None, {NAME: 12.5, "hit_ratio": 90.0})
    out = Output(io.StringIO())
    print_snapshot(Snapshot(0.0, 10.0, (inst,)), out)
    lines = out.stream.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines[1].split() == [
        "instance", "status", "hit", "ops/s", "p50", "p99", "mem", "err", "evict/s", "conn", "backlog"
    ]  # fmt: skip
    assert lines[2].split() == ["a", "up", "90.0%", "–", "–", "–", "–", "–", "–", "–", "12.5"]

"""Issue 13, the detail view at 80x24 (Pilot, real Redis, and a closed port for a down
instance): the header keeps `every … · window …` whatever the instance's name, and the line
under it keeps every label's value (`err` was left without one)."""

from __future__ import annotations

import re

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.monitor import Monitor
from cachetop.servers import LocalServer, free_port
from cachetop.tui.app import CachetopApp
from tests.tui.helpers import open_detail, text, until

LONG = "payments-session-cache-primary-eu-west-1a-0001"  # 46 characters
VALUE = r"(–|[\d.]+(k|M)?%?|[\d.]+(µs|ms|s))"


def _config(redis: LocalServer) -> Config:
    closed = free_port()
    return Config(
        path=None,
        settings=Settings(interval=0.25, window=4.0, timeout=0.5),
        instances=(
            InstanceConfig(name=LONG, target=parse_target(redis.url)),
            InstanceConfig(name="gone", target=parse_target(f"redis://127.0.0.1:{closed}/0")),
        ),
    )


def up(mon: Monitor, index: int, status: str) -> bool:
    snap = mon.latest
    return snap is not None and len(snap.instances) > index and snap.instances[index].status == status


async def _open(app: CachetopApp, name: str) -> list[str]:
    await open_detail(app, name)
    await until(lambda: "err " in line(app, 1), what="the summary line")
    return [line(app, i) for i in range(24)]


def line(app: CachetopApp, i: int) -> str:
    lines = text(app).splitlines()
    return lines[i] if i < len(lines) else ""


async def test_long_name_keeps_the_window_and_every_value_at_80_columns(redis: LocalServer) -> None:
    config = _config(redis)
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with app.run_test(size=(80, 24)):
            await until(lambda: up(mon, 0, "up"), what="up")
            screen = await _open(app, LONG)
            await until(lambda: re.search(r"err \d", line(app, 1)), what="the error rate (two polls)")
            screen = [line(app, i) for i in range(2)]
            header, summary = screen[0].rstrip(), screen[1].rstrip()
            # The name gives way (cut with …), the interval and the window stay, whole.
            assert header.endswith("every 0.25s · window 4s"), header
            assert header == " payments-session-cache-primary-eu-west-1a-… ● 1/2 up every 0.25s · window 4s"
            labels = re.findall(rf"(hit|ops/s|p99|mem|err) {VALUE}", summary)
            assert [label for label, *_ in labels] == ["hit", "ops/s", "p99", "mem", "err"], summary
            assert re.search(r"err \d+\.\d+%$", summary), summary


async def test_a_down_instance_keeps_its_labels_and_cuts_its_reason(redis: LocalServer) -> None:
    config = _config(redis)
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon)
        async with app.run_test(size=(80, 24)):
            await until(lambda: up(mon, 1, "down"), what="down")
            screen = await _open(app, "gone")
            summary = screen[1].rstrip()
            assert summary.endswith("hit – ops/s – p99 – mem – err –"), summary
            assert " DOWN: " in summary, summary
            assert len(summary) <= 80

"""The dashboard driven by a Source that is neither the Monitor nor a replay: it depends on the
protocol (cachetop/engine/source.py) only, and offers the keys the source's capabilities allow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cachetop.engine.config import Config, Settings
from cachetop.engine.source import Source, SourceBase, SourceCapabilities
from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.tui.app import CachetopApp
from tests.tui.helpers import cell, keys, text, until

NOW = 1_790_000_000.0


def instance(
    name: str, *, hit: float, ops: float, status: Status = Status.UP, stale: bool = False
) -> InstanceMetrics:
    return InstanceMetrics(
        name=name,
        kind="redis",
        address=f"{name}.example:6379",
        status=status,
        error=None if status == Status.UP else "timed out after 2s",
        metrics={"hit_ratio": hit, "ops_per_sec": ops, "connections": 7},
        stale=stale,
    )


class HandSource:
    """The protocol and nothing else, written from scratch (no SourceBase): Snapshots are handed
    in by the test, and it declares no capability at all. Every call is noted."""

    capabilities = SourceCapabilities()

    def __init__(self) -> None:
        self.latest: Snapshot | None = None
        self.interval = 3.0
        self.paused = False
        self.calls: list[str] = []
        self._subscribers: list[Callable[[Snapshot], Any]] = []

    def subscribe(self, callback: Callable[[Snapshot], Any]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def publish(self, snap: Snapshot) -> None:
        self.latest = snap
        for callback in list(self._subscribers):
            callback(snap)

    async def start(self) -> None:
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def refresh_now(self) -> None:
        self.calls.append("refresh_now")

    def set_interval(self, seconds: float) -> None:
        self.calls.append(f"set_interval {seconds:g}")


class PausableSource(SourceBase):
    """Declares pause and pace (say, a daemon attached over HTTP), but no refresh, step or act."""

    capabilities = SourceCapabilities(pause=True, pace=True)


def config() -> Config:
    return Config(path=None, settings=Settings(interval=1.0, window=10.0), instances=())


async def test_a_source_with_no_capabilities_shows_its_snapshots_and_refuses_every_control() -> None:
    source = HandSource()
    assert isinstance(source, Source)
    app = CachetopApp(config(), monitor=source)
    async with app.run_test(size=(200, 30)):  # wide enough for the note column
        source.publish(
            Snapshot(
                time=NOW,
                window_s=10.0,
                instances=(instance("alpha", hit=87.5, ops=1234.0), instance("beta", hit=50.0, ops=2.0)),
            )
        )
        await until(lambda: cell(app, "alpha", "hit") != "", what="alpha's row")
        assert (cell(app, "alpha", "hit"), cell(app, "alpha", "ops")) == ("87.5%", "1.2k")
        assert (cell(app, "beta", "hit"), cell(app, "beta", "ops")) == ("50.0%", "2.0")
        assert cell(app, "alpha", "status") == "up"
        screen = text(app)
        assert "2/2 up" in screen
        assert "every 3s · window 10s" in screen  # the source's interval, not the config's 1s
        # Nothing declared, nothing offered: the footer has no Pause, Refresh, Slower or steps...
        for action in ("toggle_pause", "refresh", "slower", "faster", "step", "seek"):
            assert app.check_action(action, ()) is False, action
        footer = screen.splitlines()[-1]
        assert "Pause" not in footer and "Refresh" not in footer and "Slower" not in footer
        # ...and the keys do nothing: the source is never asked.
        await keys(app, "p", "r", "plus", "minus", "right_square_bracket", "greater_than_sign")
        assert source.calls == []
        assert app.read_only  # no live servers behind it: destructive actions are refused
        assert "every 3s" in text(app)

        # A late instance: its last values, marked stale in the status column and the note.
        source.publish(
            Snapshot(
                time=NOW + 3,
                window_s=10.0,
                instances=(
                    instance("alpha", hit=87.5, ops=1234.0, stale=True),
                    instance("beta", hit=50.0, ops=2.0),
                ),
            )
        )
        await until(lambda: cell(app, "alpha", "status") == "stale", what="alpha stale")
        assert cell(app, "alpha", "hit") == "87.5%"
        assert cell(app, "alpha", "note") == "poll late: last values"
        assert cell(app, "beta", "status") == "up"
        table = app.screen.query_one("FleetTable")
        table.move_cursor(row=list(table.row_keys).index("alpha"))
        await keys(app, "enter")  # its own view says so too
        await until(lambda: "STALE" in text(app), what="STALE in alpha's view")
        assert "hit 87.5%" in text(app)


async def test_declared_pause_and_pace_work_and_undeclared_step_stays_refused() -> None:
    source = PausableSource(interval=2.0)
    app = CachetopApp(config(), monitor=source)
    async with source, app.run_test(size=(120, 30)):
        await source.deliver(
            Snapshot(time=NOW, window_s=10.0, instances=(instance("alpha", hit=99.0, ops=10.0),))
        )
        await until(lambda: cell(app, "alpha", "hit") == "99.0%", what="alpha's row")
        assert [app.check_action(a, ()) for a in ("toggle_pause", "slower", "refresh", "step")] == [
            True,
            True,
            False,
            False,
        ]
        await keys(app, "p")
        await until(lambda: source.paused, what="paused")
        await until(lambda: "PAUSED" in text(app), what="PAUSED in the header")
        await keys(app, "plus")  # 2s -> the next step, 5s, asked of the source
        await until(lambda: source.interval == 5.0, what="slower")
        await until(lambda: "every 5s" in text(app), what="the header follows the source")
        await keys(app, "minus", "minus")  # 5s -> 2s -> 1s
        await until(lambda: source.interval == 1.0, what="faster twice")
        await keys(app, "right_square_bracket", "r")
        assert source.latest is not None and source.latest.time == NOW  # no step, no refresh
        await keys(app, "p")
        await until(lambda: not source.paused, what="resumed")
        assert app.read_only

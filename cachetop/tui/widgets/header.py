"""The top line: fleet health, totals, polling state and the alerts badge. No clock, on purpose:
it would change every second for nothing and make screenshots non-deterministic. A replay shows
the recorded frame's own time instead: in a post-mortem, that time is what matters.

The line fits its width: at 80 columns the less useful parts shorten or go (the fleet's ops/s and
hit ratio, then the "cachetop ›" breadcrumb, then a long instance name is cut with …), never the
interval and the window, the REPLAY marker or PAUSED.
"""

from __future__ import annotations

import time
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.widgets import Static

from cachetop.engine.source import Source, Timeline
from cachetop.model import Snapshot
from cachetop.sources.link import LinkStatus
from cachetop.tui.history import fleet_summary
from cachetop.util import format as fmt
from cachetop.util.safe_text import display_key

Segment = tuple[str, str]  # (text, style)


def alerts_badge(alerts: Any) -> tuple[str, str]:
    """(text, level) for the header from an alerts state (AlertsView-like: firing, pending)."""
    if alerts is None:
        return "", ""
    firing = int(getattr(alerts, "firing", 0) or 0)
    pending = int(getattr(alerts, "pending", 0) or 0)
    problems = len(getattr(alerts, "problems", ()) or ())
    if firing:
        return f" ▲ {firing} firing ", "error"
    if getattr(alerts, "storage_problem", None):
        return " ⚠ alert state not saved ", "error"
    if pending:
        return f" △ {pending} pending ", "warning"
    if problems:
        return f" ✉ {problems} undelivered ", "warning"
    return " alerts ok ", "success"


def seconds_label(seconds: float) -> str:
    """An interval as a person reads it: 1s, not 1.04443s (a replay's median frame gap)."""
    if seconds >= 10:
        return f"{seconds:.0f}s"
    if seconds >= 1:
        return f"{round(seconds, 1):g}s"
    return f"{round(seconds, 2):g}s"


def replay_marker(source: Source | None, snap: Snapshot | None) -> str:
    """`REPLAY 12:03:04 (frame 17/240)` for a timeline that seeks (a replay), else ""."""
    if not isinstance(source, Timeline) or not source.capabilities.seek:
        return ""
    total = source.frame_count
    position = source.position
    if snap is None or position < 0:
        return f"REPLAY (frame –/{total})"
    clock = time.strftime("%H:%M:%S", time.localtime(snap.time))
    return f"REPLAY {clock} (frame {position + 1}/{total})"


LINK_REFRESH_S = 0.5


def link_banner(source: object) -> str:
    """`DAEMON LOST · last data 12:03:04 · <reason>` for an attached source whose link is down
    (`NOT CONNECTED · <reason>` before its first data)."""
    if not isinstance(source, LinkStatus):
        return ""
    problem = source.link_problem
    if not problem:
        return ""
    last = source.last_data
    if last is None:
        return f"NOT CONNECTED · {problem}"
    return f"DAEMON LOST · last data {time.strftime('%H:%M:%S', time.localtime(last))} · {problem}"


class FleetHeader(Static):
    DEFAULT_CSS = """
    FleetHeader { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self, subtitle: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.subtitle = subtitle

    def on_mount(self) -> None:
        self.refresh_from_app()
        if isinstance(getattr(self.app, "monitor", None), LinkStatus):
            # An attached daemon can go quiet: the banner must show without a new snapshot.
            self.set_interval(LINK_REFRESH_S, self.refresh_from_app)

    def on_resize(self, event: events.Resize) -> None:
        self.refresh_from_app()

    def _room(self) -> int:
        width = self.size.width or self.app.size.width
        return max(20, width - 2)  # padding 0 1

    def refresh_from_app(self) -> None:
        self.update(self.line(self._room()))

    def line(self, room: int) -> Text:
        """The header for `room` cells: the fullest form that fits."""
        app: Any = self.app
        colours = app.get_css_variables()
        banner = link_banner(app.monitor)
        if banner:  # the daemon is lost: nothing else on this line is current
            return Text(f" {banner} ", style=f"bold reverse {colours.get('error', '')}", no_wrap=True,
                        overflow="ellipsis")  # fmt: skip
        snap = app.latest
        replay = replay_marker(app.monitor, snap)
        fleet: list[Segment] = []
        totals: list[Segment] = []
        if snap is None:
            fleet.append(("waiting for the first poll…", "dim"))
        else:
            summary = fleet_summary(snap.instances)
            fleet.append(("● ", colours.get("success" if summary.healthy else "error", "")))
            fleet.append((f"{summary.up}/{summary.total} up", "bold" if not summary.healthy else ""))
            totals.append((f"{fmt.rate(summary.ops_per_sec)} ops/s  hit {fmt.pct(summary.hit_ratio)}", ""))
        badge, level = alerts_badge(getattr(app, "alerts_view", lambda: None)())
        timing = f"every {seconds_label(app.interval)}"
        if snap is not None:
            timing += f" · window {snap.window_s:g}s"
        tail: list[list[Segment]] = []
        if badge:
            tail.append([(badge, f"bold reverse {colours.get(level, '')}")])
        tail.append([(timing, "dim")])
        if replay:
            tail.append([(f" {replay} ", f"bold reverse {colours.get('accent', '')}")])
        if app.paused and not replay:  # a replay is paused whenever it is stepped: the frame says it
            tail.append([(" PAUSED ", f"bold reverse {colours.get('warning', '')}")])
        if isinstance(app.monitor, LinkStatus):  # attached to a daemon: say so, and whether it may act
            tail.append([("⇄ read-only" if app.read_only else "⇄ attached", "dim")])

        def build(prefix: bool, with_totals: bool, name_room: int | None) -> list[list[Segment]]:
            head: list[Segment] = []
            if prefix or not self.subtitle:
                head.append(("cachetop", "bold"))
            if self.subtitle:
                name = display_key(self.subtitle, 200 if name_room is None else name_room)
                head += [(" › ", "")] if prefix else []
                head.append((name, "bold"))  # Text: a hostile name stays literal
            groups = [head, fleet]
            if with_totals and totals:
                groups.append(totals)
            return groups + tail

        tries = [  # (gap, the "cachetop ›" breadcrumb, the fleet's ops/s and hit ratio)
            ("  ", True, True),
            (" ", True, True),
            (" ", True, False),  # in an instance's view its own figures are on the next line
            (" ", False, False),
        ]
        for gap, prefix, with_totals in tries:
            groups = build(prefix, with_totals, None)
            if _width(groups, gap) <= room:
                return _assemble(groups, gap)
        # Still too wide: the instance name gives way, cut with … (never the timing or markers).
        gap = " "
        fixed = _width(build(False, False, None), gap) - cell_len(display_key(self.subtitle, 200))
        groups = build(False, False, max(4, room - fixed))
        return _assemble(groups, gap)


def _width(groups: list[list[Segment]], gap: str) -> int:
    return sum(cell_len(text) for group in groups for text, _ in group) + cell_len(gap) * (len(groups) - 1)


def _assemble(groups: list[list[Segment]], gap: str) -> Text:
    line = Text(no_wrap=True, overflow="ellipsis")
    for i, group in enumerate(groups):
        if i:
            line.append(gap)
        for text, style in group:
            line.append(text, style=style)
    return line

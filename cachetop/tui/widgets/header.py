"""The top line: fleet health, totals, polling state and the alerts badge. No clock, on purpose:
it would change every second for nothing and make screenshots non-deterministic."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from cachetop import format as fmt
from cachetop.tui.history import fleet_summary


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


class FleetHeader(Static):
    DEFAULT_CSS = """
    FleetHeader { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self, subtitle: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.subtitle = subtitle

    def on_mount(self) -> None:
        self.refresh_from_app()

    def refresh_from_app(self) -> None:
        app: Any = self.app
        colours = app.get_css_variables()
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append("cachetop", style="bold")
        if self.subtitle:
            line.append(" › ")
            line.append(self.subtitle, style="bold")  # Text: a hostile name stays literal
        snap = app.latest
        if snap is None:
            line.append("  waiting for the first poll…", style="dim")
        else:
            summary = fleet_summary(snap.instances)
            health = "success" if summary.healthy else "error"
            line.append("  ● ", style=colours.get(health, ""))
            line.append(f"{summary.up}/{summary.total} up", style="bold" if not summary.healthy else "")
            line.append(f"  {fmt.rate(summary.ops_per_sec)} ops/s  hit {fmt.pct(summary.hit_ratio)}")
        badge, level = alerts_badge(getattr(app, "alerts_view", lambda: None)())
        if badge:
            line.append("  ")
            line.append(badge, style=f"bold reverse {colours.get(level, '')}")
        line.append(f"  every {app.interval:g}s", style="dim")
        if snap is not None:
            line.append(f" · window {snap.window_s:g}s", style="dim")
        if app.paused:
            line.append("  ")
            line.append(" PAUSED ", style=f"bold reverse {colours.get('warning', '')}")
        self.update(line)

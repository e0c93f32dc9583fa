"""The Alerts tab: firing and pending alerts, recent transitions, and delivery problems.

Renders an AlertsView-like object (active, history, problems; duck-typed) from the app's
alerts source, for one instance or, with instance=None, for the whole fleet.
"""

from __future__ import annotations

import time
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from cachetop.alerts.rules import format_value
from cachetop.model import Snapshot
from cachetop.tui.columns import Column
from cachetop.tui.overview_rows import Row
from cachetop.tui.widgets.diff_table import DiffTable
from cachetop.util import format as fmt
from cachetop.util.safe_text import display_key

ALERT_COLUMNS = (
    Column("state", "state", 7, 0, right=False),
    Column("sev", "severity", 8, 0, right=False),
    Column("rule", "rule", 14, 0, right=False),
    Column("inst", "instance", 14, 0, right=False),
    Column("value", "value", 9, 0),
    Column("since", "for", 9, 0),
    Column("what", "", 30, 0, right=False),
)
MIN_WHAT = 12  # the last column: what the alert says; never narrower than this
SEVERITY_LEVEL = {"critical": "bad", "warning": "warn", "info": None}


def alert_columns(instance: str | None, width: int) -> tuple[Column, ...]:
    """The columns for a panel `width` cells wide: the last column takes what is left (the
    tables' cell padding is 2 a column, 2 more for a scrollbar), and a panel for one instance
    has no instance column (the header names it)."""
    columns = [c for c in ALERT_COLUMNS if instance is None or c.key != "inst"]
    fixed = sum(c.width + 2 for c in columns[:-1]) + 2 + 2
    what = columns[-1]
    return (*columns[:-1], Column(what.key, what.label, max(MIN_WHAT, width - fixed), 0, right=False))


def _value(metric: str, value: float | str | None) -> str:
    if value is None:
        return fmt.NA
    return format_value(metric, value) if isinstance(value, float | int) else display_key(str(value), 12)


def alert_rows(view: Any, instance: str | None, now: float) -> list[Row]:
    rows = []
    for i, a in enumerate(x for x in view.active if instance is None or x.instance == instance):
        firing = str(a.state) == "firing"
        rows.append(
            Row(
                f"active:{i}",
                {
                    "state": (str(a.state).upper(), "bad" if firing else "warn", "bold"),
                    "sev": (a.severity, SEVERITY_LEVEL.get(a.severity), ""),
                    "rule": (display_key(a.rule, 30), None, ""),
                    "inst": (display_key(a.instance, 30), None, ""),
                    "value": (_value(a.metric, a.value), None, ""),
                    "since": (fmt.duration(max(0.0, now - a.since)), None, ""),
                    "what": (display_key(a.reason or a.description, 200), None, "dim"),
                },
            )
        )
    for i, t in enumerate(x for x in view.history if instance is None or x.instance == instance):
        rows.append(
            Row(
                f"history:{i}",
                {
                    "state": (str(t.new), None, "dim"),
                    "sev": (t.severity, None, "dim"),
                    "rule": (display_key(t.rule, 30), None, "dim"),
                    "inst": (display_key(t.instance, 30), None, "dim"),
                    "value": (_value(t.metric, t.value), None, "dim"),
                    "since": (fmt.duration(max(0.0, now - t.time)) + " ago", None, "dim"),
                    "what": (f"{t.old} → {t.new}", None, "dim"),
                },
            )
        )
    return rows


def problems_line(view: Any) -> str:
    if view is None:
        return "alerts are not running (no [[rule]] or [alerts] in the config)"
    line = f"{view.firing} firing · {view.pending} pending · {view.queued} message(s) queued"
    if getattr(view, "storage_problem", None):
        line = f"⚠ {view.storage_problem}\n{line}"
    for p in view.problems[:3]:
        line += f"\n{p.state} {p.kind} to {display_key(p.channel, 30)} after {p.attempts} attempt(s)"
        if p.error:
            line += f": {display_key(p.error, 80)}"
    return line


class AlertsPanel(Vertical):
    DEFAULT_CSS = """
    AlertsPanel { height: 1fr; }
    AlertsPanel > Static { height: auto; max-height: 4; padding: 0 1; }
    """

    def __init__(self, instance: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instance = instance

    def compose(self) -> ComposeResult:
        yield Static(problems_line(None), id="alerts-status", markup=False)
        yield DiffTable(id="alerts-table")

    def on_mount(self) -> None:
        table = self.query_one(DiffTable)
        table.set_colours(self.app.get_css_variables())
        table.set_columns(alert_columns(self.instance, self.size.width or self.app.size.width))
        table.cursor_type = "none"

    def on_resize(self, event: events.Resize) -> None:
        table = self.query_one(DiffTable)
        columns = alert_columns(self.instance, event.size.width)
        if list(columns) != table.layout_columns:
            table.set_columns(columns)  # rows come back on the next snapshot
            app: Any = self.app
            if app.latest is not None:
                self.show_snapshot(app.latest)

    def show_snapshot(self, snap: Snapshot) -> None:
        app: Any = self.app
        view = app.alerts_view()
        self.query_one("#alerts-status", Static).update(problems_line(view))
        now = snap.time if snap is not None else time.time()
        self.query_one(DiffTable).show(alert_rows(view, self.instance, now) if view is not None else [])

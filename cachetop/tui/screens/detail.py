"""One instance in depth: charts, command stats, slowlog, clients and server facts.

Optional panels (hot keys, alerts) are tabs added when their data source exists, so this
screen does not depend on those features being built.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane

from cachetop.backends.capabilities import CountsOwnCommands, HasOwnGate, LendsSideCommands
from cachetop.model import InstanceMetrics, Snapshot
from cachetop.sources.link import LinkStatus
from cachetop.sources.prom_snapshot import LIVE_FACT
from cachetop.tui.detail_charts import chart_series, chart_widgets, summary_metrics
from cachetop.tui.detail_rows import (
    CLIENT_COLUMNS,
    COMMAND_COLUMNS,
    FACT_COLUMNS,
    SLOWLOG_COLUMNS,
    client_rows,
    clients_note,
    command_rows,
    commands_note,
    fact_rows,
    slowlog_rows,
)
from cachetop.tui.inspect import Details, fetch_details
from cachetop.tui.instances import live_instance
from cachetop.tui.widgets.chart import Chart
from cachetop.tui.widgets.diff_table import DiffTable
from cachetop.tui.widgets.footer import FitFooter
from cachetop.tui.widgets.header import FleetHeader
from cachetop.util.safe_text import display_key

# The slowlog and client list are read from the server: an attached dashboard has no connection.
NOT_ATTACHED = "not available attached: the daemon serves no slowlog or client list (run cachetop on a host)"

DETAILS_EVERY_S = 5.0  # slowlog/clients refresh while their tab is open
WIDE = 120  # from this width the charts go two by two


def summary_line(
    inst: InstanceMetrics, values: list[tuple[str, str, str]], status_style: str, room: int
) -> Text:
    """The line under the header, fitted to `room` cells: every label keeps its value. At 80
    columns the gaps narrow, then the kind and the address go (the Server tab has them), then a
    down instance's reason is cut with …; a metric is never left as a bare label."""
    status = "STALE" if inst.stale else str(inst.status).upper()  # stale: up, its poll late
    for gap, head in (
        ("  ", f"{inst.kind} {inst.address}"),
        (" ", f"{inst.kind} {inst.address}"),
        (" ", inst.address),
        (" ", ""),
    ):
        pairs = gap.join(f"{label} {value}" for label, value, _ in values)
        fixed = cell_len(head) + len(gap) * bool(head) + len(status) + len(gap) + cell_len(pairs)
        reason = f": {display_key(inst.error, 200)}" if inst.error else ""
        if fixed + cell_len(reason) <= room or head == "":
            break
    if reason and fixed + cell_len(reason) > room:
        reason = reason[: room - fixed - 1] + "…" if room - fixed > 4 else ""
    line = Text(no_wrap=True, overflow="ellipsis")
    if head:
        line.append(head + gap)
    line.append(status, style=status_style)
    line.append(reason)
    for label, value, style in values:
        line.append(f"{gap}{label} ")
        line.append(value, style=style)
    return line


class DetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "back", "Back"),
        # Priority: ← → switch tabs even when a table has the focus (the Hot keys table takes it).
        Binding("left", "previous_tab", "Tab", show=False, priority=True),
        Binding("right", "next_tab", "Tab", show=False, priority=True),
        # The Hot keys tab's keys, wherever the focus is (the panel's own `e` needs the focus
        # inside it, which took a Tab); check_action keeps them to that tab.
        Binding("e", "evict_key", "Evict key"),
        # The Keyspace tab's: analyse now (never by itself), evict idle keys (check_action: that tab only).
        Binding("a", "keyspace_run", "Analyse"),
        Binding("i", "keyspace_evict_idle", "Evict idle"),
        # The Sizing tab's: profile now (never by itself; check_action: that tab only).
        Binding("m", "sizing_run", "Profile"),
        Binding("up", "hotkey_cursor(-1)", "Up", show=False),
        Binding("down", "hotkey_cursor(1)", "Down", show=False),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.instance_name = name
        self.details: Details | None = None
        self._details_for: str | None = None

    def compose(self) -> ComposeResult:
        yield FleetHeader(self.instance_name, id="header")
        yield Static(id="summary")
        with TabbedContent(id="tabs"):
            with TabPane("Charts", id="tab-charts"), VerticalScroll(id="charts"):
                yield from chart_widgets()  # one per chart of the metric registry
            with TabPane("Commands", id="tab-commands"):
                yield Static(id="commands-note")
                yield DiffTable(id="commands")
            with TabPane("Slowlog", id="tab-slowlog"):
                yield Static(id="slowlog-note")
                yield DiffTable(id="slowlog")
            with TabPane("Clients", id="tab-clients"):
                yield Static(id="clients-note")
                yield DiffTable(id="clients")
            with TabPane("Server", id="tab-server"):
                yield DiffTable(id="facts")
            yield from self._extra_panes()
        yield FitFooter()

    def _extra_panes(self) -> list[TabPane]:
        """Tabs of optional features, when their widget modules are present."""
        panes: list[TabPane] = []
        try:
            from cachetop.tui.widgets.hotkeys_panel import HotKeysPanel
        except ImportError:
            pass
        else:
            panes.append(
                TabPane("Hot keys", HotKeysPanel(self.instance_name, id="hotkeys"), id="tab-hotkeys")
            )
        app: Any = self.app
        if getattr(app, "alerts", None) is not None:
            from cachetop.tui.widgets.alerts_panel import AlertsPanel

            panes.append(TabPane("Alerts", AlertsPanel(self.instance_name, id="alerts"), id="tab-alerts"))
        from cachetop.tui.widgets.keyspace_panel import KeyspacePanel

        # Last: the tabs before it keep their places (arrow-key habits, tests that count them).
        panes.append(TabPane("Keyspace", KeyspacePanel(self.instance_name, id="keyspace"), id="tab-keyspace"))
        from cachetop.tui.widgets.trends_panel import TrendsPanel

        panes.append(TabPane("Trends", TrendsPanel(self.instance_name, id="trends"), id="tab-trends"))
        from cachetop.tui.widgets.sizing_panel import SizingPanel

        panes.append(TabPane("Sizing", SizingPanel(self.instance_name, id="sizing"), id="tab-sizing"))
        return panes

    def on_mount(self) -> None:
        for table_id, columns in (
            ("#commands", COMMAND_COLUMNS),
            ("#slowlog", SLOWLOG_COLUMNS),
            ("#clients", CLIENT_COLUMNS),
            ("#facts", FACT_COLUMNS),
        ):
            table = self.query_one(table_id, DiffTable)
            table.set_colours(self.app.get_css_variables())
            table.set_columns(columns)
            table.cursor_type = "none"
        self._wide(self.app.size.width)
        app: Any = self.app
        app.history.keep_full(self.instance_name)  # a large fleet keeps only sparklines until now
        if app.latest is not None:
            self.show_snapshot(app.latest)
        self.set_interval(DETAILS_EVERY_S, self._maybe_fetch)
        self._want_detail(True)
        inst = app.latest.by_name(self.instance_name) if app.latest is not None else None
        if inst is not None and LIVE_FACT in inst.facts:  # numbers from Prometheus: no server here
            for what in ("slowlog", "clients"):
                note = f"the {what} comes from the daemon that polls this instance: {inst.facts[LIVE_FACT]}"
                self.query_one(f"#{what}-note", Static).update(note)

    def on_unmount(self) -> None:
        self._want_detail(False)

    def _want_detail(self, wanted: bool) -> None:
        """Per-command figures on every poll while this view is open (every few seconds else)."""
        app: Any = self.app
        for poller in app.live_pollers():
            if poller.inst.name == self.instance_name:
                poller.want_detail(wanted)

    def on_resize(self, event: events.Resize) -> None:
        self._wide(event.size.width)
        app: Any = self.app
        inst = self.instance(app.latest) if app.latest is not None else None
        if inst is not None:
            self._summary(inst)  # refitted to the new width

    def _wide(self, width: int) -> None:
        self.query_one("#charts").set_class(width >= WIDE, "wide")

    def restyle(self) -> None:
        for table in self.query(DiffTable):
            table.set_colours(self.app.get_css_variables())
        app: Any = self.app
        if app.latest is not None:
            self.show_snapshot(app.latest)

    # --- data ---------------------------------------------------------------------------------

    def instance(self, snap: Snapshot) -> InstanceMetrics | None:
        return snap.by_name(self.instance_name)

    def show_snapshot(self, snap: Snapshot) -> None:
        self.query_one(FleetHeader).refresh_from_app()
        inst = self.instance(snap)
        if inst is None:
            return
        self._summary(inst)
        self._charts()
        note = self.query_one("#commands-note", Static)
        note.update(text := commands_note(inst))
        note.display = bool(text)  # no blank line above a table that has rows
        self.query_one("#commands", DiffTable).show(command_rows(inst))
        self.query_one("#facts", DiffTable).show(fact_rows(inst))
        for panel_id in ("#hotkeys", "#alerts"):
            for panel in self.query(panel_id):
                panel.show_snapshot(snap)  # type: ignore[attr-defined]

    def _summary(self, inst: InstanceMetrics) -> None:
        app: Any = self.app
        colours = app.get_css_variables()
        levels = {"good": "success", "warn": "warning", "bad": "error"}
        values = []
        for label, metric, render in summary_metrics():
            level = levels.get(app.health.level(inst, metric) or "", "")
            values.append((label, render(inst.metrics.get(metric)), colours.get(level, "") if level else ""))
        level = "warning" if inst.stale else "success" if inst.status == "up" else "error"
        status_colour = colours.get(level, "")
        room = max(20, (self.size.width or app.size.width) - 2)  # #summary has padding 0 1
        line = summary_line(inst, values, f"bold {status_colour}", room)
        self.query_one("#summary", Static).update(line)

    def _charts(self) -> None:
        app: Any = self.app
        hist = app.history.of(self.instance_name)
        for chart_id, series in chart_series(hist.values).items():
            for chart in self.query(f"#{chart_id}"):
                if isinstance(chart, Chart):
                    chart.set_series(series)

    # --- slowlog and clients, on demand -------------------------------------------------------

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()  # `e` in the footer on the Hot keys tab only (check_action)
        if event.pane.id != "tab-keyspace":
            for panel in self.query("#keyspace"):
                panel.cancel()  # type: ignore[attr-defined]  # leaving the tab stops an analysis
        if event.pane.id != "tab-sizing":
            for panel in self.query("#sizing"):
                panel.cancel()  # type: ignore[attr-defined]  # leaving the tab ends the MONITOR
        self._maybe_fetch()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("evict_key", "hotkey_cursor"):
            return self._active_tab() == "tab-hotkeys"
        if action.startswith("keyspace_"):
            return self._active_tab() == "tab-keyspace"
        if action.startswith("sizing_"):
            return self._active_tab() == "tab-sizing"
        return True

    def _active_tab(self) -> str | None:
        """The open tab; None while the tabs are not (or no longer) mounted: bindings are checked
        then too, as the screen is built and as it is taken down."""
        tabs = self.query("#tabs")
        return tabs.first(TabbedContent).active if tabs else None

    def action_keyspace_run(self) -> None:
        for panel in self.query("#keyspace"):
            panel.action_run()  # type: ignore[attr-defined]

    def action_sizing_run(self) -> None:
        for panel in self.query("#sizing"):
            panel.action_run()  # type: ignore[attr-defined]

    def action_keyspace_evict_idle(self) -> None:
        for panel in self.query("#keyspace"):
            panel.action_evict_idle()  # type: ignore[attr-defined]

    def action_hotkey_cursor(self, step: int) -> None:
        """↑/↓ on the Hot keys tab pick a key, whatever has the focus. Not by focusing the table
        when the tab opens: a focus inside a pane makes TabbedContent switch back to that pane
        when its message lands, after a quick → past the tab."""
        for table in self.query("#hotkeys-table"):
            if isinstance(table, DiffTable) and table.row_count:
                table.move_cursor(row=max(0, min(table.cursor_row + step, table.row_count - 1)))

    def action_evict_key(self) -> None:
        for panel in self.query("#hotkeys"):
            panel.action_evict_key()  # type: ignore[attr-defined]

    def _maybe_fetch(self) -> None:
        active = self.query_one("#tabs", TabbedContent).active
        if active in ("tab-slowlog", "tab-clients") and self.is_current:
            self.fetch()

    @work(exclusive=True, group="details")
    async def fetch(self) -> None:
        app: Any = self.app
        inst_cfg = live_instance(app, self.instance_name)
        if inst_cfg is None:
            if isinstance(app.monitor, LinkStatus):  # attached to a daemon: no connection here
                self.show_details(Details(error=NOT_ATTACHED))
            return
        poller = next((p for p in app.live_pollers() if p.inst.name == self.instance_name), None)
        backend = poller.backend if poller is not None else None
        own = backend.own_commands if isinstance(backend, CountsOwnCommands) else None
        if poller is not None and not app.monitor.paused:
            # Right after a poll, so our few commands are counted before the next INFO runs.
            poller.polled.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(poller.polled.wait(), poller.interval + poller.timeout)
        gate = backend.own_gate if isinstance(backend, HasOwnGate) else None
        # A live Redis poller lends its poll connection: no connection of the view's own.
        side = backend.side_commands if isinstance(backend, LendsSideCommands) else None
        details = await fetch_details(inst_cfg, app.config.timeout_of(inst_cfg), own, gate, side)
        self.show_details(details)

    def show_details(self, details: Details) -> None:
        # A fetch can outlive its screen: the user went back or quit while it ran, and the cancel
        # that should have stopped it can be swallowed as the fetch completes. A screen that is
        # gone has no widgets to fill, so the result is dropped.
        if not self.is_attached or not self.is_mounted or not self.query("#slowlog-note"):
            return  # (or its widgets are being removed as the app ends: NoMatches otherwise)
        self.details = details
        app: Any = self.app
        now = app.latest.time if app.latest is not None else 0.0
        slow_note = details.error or "; ".join(details.notes)
        if not details.supports_slowlog:
            slow_note = "memcached has no slowlog"
        elif not details.slowlog and not slow_note:
            slow_note = "the slowlog is empty"
        self.query_one("#slowlog-note", Static).update(slow_note)
        self.query_one("#clients-note", Static).update(clients_note(details))
        self.query_one("#slowlog", DiffTable).show(slowlog_rows(details, now))
        self.query_one("#clients", DiffTable).show(client_rows(details))

    # --- actions ------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def _step_tab(self, step: int) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        ids = [pane.id for pane in tabs.query(TabPane) if pane.id]
        if tabs.active in ids:
            tabs.active = ids[(ids.index(tabs.active) + step) % len(ids)]

    def action_next_tab(self) -> None:
        self._step_tab(1)

    def action_previous_tab(self) -> None:
        self._step_tab(-1)

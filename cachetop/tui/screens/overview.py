"""The fleet overview: one row per instance, the fleet row, sort, `/` filter, group by tag.

Rows are virtual (widgets/fleet_table.py): only those on screen are formatted and drawn, and
the notes line names a few down instances, not all of them, so a tick costs the same for 20
instances or 10,000."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input, Static

from cachetop.model import Snapshot, Status
from cachetop.tui.columns import layout
from cachetop.tui.labels import node_label
from cachetop.tui.overview_rows import FLEET_KEY, GROUP_PREFIX, build_rows, group_of, shard_numbers
from cachetop.tui.widgets.fleet_table import FleetTable
from cachetop.tui.widgets.footer import FitFooter
from cachetop.tui.widgets.header import FleetHeader
from cachetop.util.safe_text import display_key


def alert_states(alerts: Any) -> dict[str, str]:
    """instance name -> "firing" or "pending" (firing wins), from an AlertsView-like state."""
    states: dict[str, str] = {}
    for alert in getattr(alerts, "active", ()) or ():
        state = str(getattr(alert, "state", ""))
        state = state.rsplit(".", 1)[-1].lower()
        if state == "firing" or (state == "pending" and alert.instance not in states):
            states[alert.instance] = state
    return states


class FilterBox(Input):
    """The filter box. Enter hands the focus back to the table in the binding's own action, not in
    a handler of the Submitted message: keys typed right after Enter (End, Enter to open the row)
    are already queued behind that message, and the app resolves their bindings against whatever
    has the focus when they arrive."""

    async def action_submit(self) -> None:
        await super().action_submit()
        if isinstance(self.screen, OverviewScreen):
            self.screen.set_focus(self.screen.table)  # now: focus() waits for a later turn


class OverviewScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Details", show=True, priority=False),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "next_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse", show=False),
        *(Binding(str(n), f"sort_column({n})", f"Sort by column {n}", show=False) for n in range(1, 10)),
        Binding("w", "toggle_worst_first", "Worst first", show=False),
        Binding("g", "toggle_group", "Group", show=False),
        Binding("c", "collapse_all", "Collapse", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._width = 0
        self._typing_ahead = False  # "/" was pressed and the filter box has no focus yet

    def compose(self) -> ComposeResult:
        yield FleetHeader(id="header")
        yield FleetTable(id="fleet")
        yield Static(id="notes")
        filter_input = FilterBox(
            placeholder="filter by name or tag (tag:NAME); enter keeps, escape clears", id="filter"
        )
        filter_input.cursor_blink = False
        yield filter_input
        yield FitFooter()  # keys that do not fit are left out whole, never cut

    @property
    def table(self) -> FleetTable:
        return self.query_one(FleetTable)

    def on_mount(self) -> None:
        self.query_one("#filter").display = False
        self.restyle()

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._relayout(event.size.width)

    def on_screen_resume(self) -> None:
        self.refresh_view()

    def restyle(self) -> None:
        self.table.set_colours(self.app.get_css_variables())
        self._relayout(self.size.width or self.app.size.width)

    def _relayout(self, width: int) -> None:
        self._width = width
        selected = self.table.selected_key()
        self.table.set_columns(layout(width))
        self.refresh_view()
        if selected:
            self._select(selected)

    # --- data ---------------------------------------------------------------------------------

    def show_snapshot(self, snap: Snapshot) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        app: Any = self.app
        snap = app.latest
        self.query_one(FleetHeader).refresh_from_app()
        if snap is None or not self.table.layout_columns:
            return
        rows = build_rows(
            snap,
            app.history,
            app.view,
            self.table.layout_columns,
            app.health,
            alert_states(app.alerts_view()),
        )
        self.table.set_sort_marker(app.view.sort_key, app.view.descending)
        self.table.show(rows)
        self._show_notes(snap)

    def _show_notes(self, snap: Snapshot) -> None:
        app: Any = self.app
        colours = app.get_css_variables()
        notes = Text(no_wrap=True, overflow="ellipsis")
        down = [i for i in snap.instances if i.status not in (Status.UP, Status.UNKNOWN)]
        shards = shard_numbers(snap.instances) if any(i.shard for i in down) else {}
        # Two lines at most: name as many as fit, then count the rest.
        room = 2 * max(self.size.width, 40)
        for n, inst in enumerate(down):
            if len(notes) > room:
                notes.append(f"  +{len(down) - n:,} more down", style=f"bold {colours.get('error', '')}")
                break
            if notes:
                notes.append("  ")
            # A cluster node by its own address (its name starts with the cluster's, the same on
            # every node, and would be cut before the part that tells it apart).
            cluster = inst.name.split("/", 1)[0]
            label = node_label(inst.name, inst.address, shards.get((cluster, inst.shard or "")))
            notes.append(
                f"{display_key(label or inst.name, 30)} {inst.status}: ",
                style=f"bold {colours.get('error', '')}",
            )
            notes.append(display_key(inst.error or "", 60))
        described = app.view.describe()
        if described:
            if notes:
                notes.append("  ")
            notes.append(described, style="dim")
        if any(i.memory_max_from == "system" and i.status == Status.UP for i in snap.instances):
            notes.append("  * no maxmemory: % of host memory", style="dim")
        self.query_one("#notes", Static).update(notes)

    # --- actions ------------------------------------------------------------------------------

    def _select(self, key: str) -> None:
        # A row that is filtered out leaves the cursor where it is.
        with contextlib.suppress(KeyError):
            self.table.move_cursor(row=self.table.get_row_index(key))

    def action_open(self) -> None:
        key = self.table.selected_key()
        if key is not None and key.startswith(GROUP_PREFIX):
            self._toggle_collapse(key.removeprefix(GROUP_PREFIX))
            return
        if key is None or key == FLEET_KEY:
            return
        from cachetop.tui.screens.detail import DetailScreen

        self.app.push_screen(DetailScreen(key))

    def on_fleet_table_row_selected(self, event: FleetTable.RowSelected) -> None:
        self.action_open()

    def on_fleet_table_header_selected(self, event: FleetTable.HeaderSelected) -> None:
        self.sort_by(event.column_key)

    def sort_by(self, key: str) -> None:
        app: Any = self.app
        app.view.sort_by(key)
        self.refresh_view()

    def action_next_sort(self) -> None:
        app: Any = self.app
        keys = [c.key for c in self.table.layout_columns if c.key != "note"]
        current = app.view.sort_key
        nxt = keys[(keys.index(current) + 1) % len(keys)] if current in keys else keys[0]
        app.view.sort_key = None  # a new column starts in its natural direction
        self.sort_by(nxt)

    def action_sort_column(self, number: int) -> None:
        """`1`..`9`: sort by the Nth column on screen; the same key again reverses it."""
        keys = [c.key for c in self.table.layout_columns if c.key != "note"]
        if 1 <= number <= len(keys):
            self.sort_by(keys[number - 1])

    def action_toggle_worst_first(self) -> None:
        app: Any = self.app
        app.view.worst_first = not app.view.worst_first
        self.refresh_view()

    def action_reverse_sort(self) -> None:
        app: Any = self.app
        if app.view.sort_key is None:
            app.view.sort_by("name")
        else:
            app.view.descending = not app.view.descending
        self.refresh_view()

    def _toggle_collapse(self, group: str) -> None:
        """Enter on a group row folds it to its summary row, or unfolds it."""
        app: Any = self.app
        app.view.toggle_group(group)
        if app.latest is not None:
            self.show_snapshot(app.latest)

    def action_collapse_all(self) -> None:
        """Folds every group (a fleet of 200 fits on one screen), or unfolds them all."""
        app: Any = self.app
        groups = {group_of(i) for i in app.latest.instances} if app.latest is not None else set()
        app.view.collapsed = set() if app.view.collapsed else groups
        if app.latest is not None:
            self.show_snapshot(app.latest)

    def action_toggle_group(self) -> None:
        app: Any = self.app
        app.view.group_by_tag = not app.view.group_by_tag
        self.refresh_view()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()
        # Keys typed in the same burst as "/" (a fast typist, a paste) were forwarded to the
        # table before the focus moved, and would act as commands ("c" folds, "-" polls faster).
        # They bubble from the table's queue to this screen's: on_key hands their characters to
        # the box until a callback queued behind them, table then screen, says they are all
        # through. Keys typed later go to the box itself.
        self._typing_ahead = True
        self.table.call_later(self.call_later, self._end_typing_ahead)

    def _end_typing_ahead(self) -> None:
        self._typing_ahead = False

    def action_clear_filter(self) -> None:
        app: Any = self.app
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        app.view.query = ""
        self.table.focus()
        self.refresh_view()

    def on_input_changed(self, event: Input.Changed) -> None:
        app: Any = self.app
        app.view.query = event.value
        self.refresh_view()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        box = self.query_one("#filter", Input)
        if not box.value:
            box.display = False
        self.table.focus()

    def on_key(self, event: events.Key) -> None:
        box = self.query_one("#filter", Input)
        if event.key == "slash" and not box.has_focus:
            # Here rather than only through the binding, which acts once the key has bubbled up
            # to the app: by then the keys typed after it have passed this screen already.
            event.stop()
            event.prevent_default()
            self.action_filter()
            return
        if self._typing_ahead and event.is_printable and event.character:
            event.stop()
            event.prevent_default()
            box.insert_text_at_cursor(event.character)
            return
        if event.key == "escape" and box.has_focus:
            event.stop()
            self.action_clear_filter()

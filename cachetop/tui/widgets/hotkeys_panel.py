"""The Hot keys tab: the instance's hot keys with a per-key sparkline, prefixes and stampedes.

Renders the HotKeysView the hot-key collector attaches to InstanceMetrics.extras["hotkeys"]
(duck-typed, so this module does not import the collector). Keys are escaped here, from the raw
bytes, to this panel's widths (escaping `display` again would show ESC as \\x1b), and shown as
Text, never markup.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from cachetop.analysis.snapshot_advice import InstanceAdvice, instance_advice
from cachetop.hotkeys.view import HotKey, HotKeysView
from cachetop.model import Snapshot
from cachetop.sources.prom_snapshot import LIVE_FACT
from cachetop.tui.columns import Column
from cachetop.tui.history import sparkline
from cachetop.tui.hotkey_advice_text import advice_line, node_line
from cachetop.tui.overview_rows import Row
from cachetop.tui.widgets.diff_table import DiffTable
from cachetop.util import format as fmt
from cachetop.util.safe_text import display_key

KEY_COLUMNS = (
    Column("hot", "", 1, 0, right=False),
    Column("key", "key", 30, 0, right=False),
    Column("ops", "ops/s", 7, 0),
    Column("share", "share", 6, 0),
    Column("rw", "reads/writes", 12, 0),
    Column("hm", "hit/miss", 11, 0),
    Column("trend", "trend", 16, 0, right=False),
    Column("count", "count", 15, 0),
)
# At 80 columns (the full set needs 114 cells): narrower, and without the trend sparkline, so no
# column is cut by the screen's edge; a key wider than its column ends in ….
NARROW_KEY_COLUMNS = (
    Column("hot", "", 1, 0, right=False),
    Column("key", "key", 20, 0, right=False),
    Column("ops", "ops/s", 7, 0),
    Column("share", "share", 6, 0),
    Column("rw", "r/w", 9, 0),
    Column("hm", "hit/miss", 9, 0),
    Column("count", "count", 10, 0),
)
PREFIX_LIMIT = 5


def key_columns(width: int) -> tuple[Column, ...]:
    """The full columns when they fit `width` (2 cells of padding a column, 2 for a scrollbar)."""
    needed = sum(c.width + 2 for c in KEY_COLUMNS) + 2
    return KEY_COLUMNS if width >= needed else NARROW_KEY_COLUMNS


def ranked(view: HotKeysView) -> list[HotKey]:
    return sorted(view.keys, key=lambda k: k.count, reverse=True)


def key_rows(view: HotKeysView) -> list[Row]:
    rows = []
    for i, k in enumerate(ranked(view)):
        # Space-Saving may overcount a key by k.error: rates and shares show what is certain,
        # marked ≥ when the true value may be higher, and the count shows its bound.
        certain = k.guaranteed_fraction if k.error else 1.0
        at_least = "≥" if k.error else ""
        share = None if k.share is None else k.share * 100 * certain
        ops = None if k.ops_per_sec is None else k.ops_per_sec * certain
        hm = fmt.NA if k.hits is None else f"{fmt.short_count(k.hits)}/{fmt.short_count(k.misses)}"
        rows.append(
            Row(
                f"key:{i}",
                {
                    "hot": ("♨" if k.hot else "", "bad" if k.hot else None, "bold"),
                    "key": (display_key(k.key, 60), None, "bold" if k.hot else ""),
                    "ops": (at_least + fmt.rate(ops) if ops is not None else fmt.NA, None, ""),
                    "share": (
                        at_least + fmt.pct(share, 0 if at_least and share >= 10 else 1)
                        if share is not None
                        else fmt.NA,
                        "bad" if k.hot else None,
                        "",
                    ),
                    "rw": (f"{fmt.short_count(k.reads)}/{fmt.short_count(k.writes)}", None, ""),
                    "hm": (hm, None, ""),
                    "trend": (sparkline(k.history, 16, floor=0.0), "warn" if k.hot else None, ""),
                    "count": (k.count_text, None, "dim" if k.error else ""),
                },
            )
        )
    return rows


def status_line(view: HotKeysView | None) -> str:
    if view is None:
        return 'hot keys are not collected for this instance (hotkeys = "off", or not started)'
    parts = [f"source {view.source}", view.status]
    if view.detail:
        parts.append(view.detail)
    if view.error:
        parts.append(f"error: {view.error}")
    if view.drop_rate is not None:
        parts.append(f"server dropped {view.drop_rate * 100:.1f}% of lines")
    if view.sampled_s:
        parts.append(f"listened {view.sampled_s:.0f}s of {view.window_s:.0f}s")
    line = " · ".join(display_key(p, 120) for p in parts)
    if view.status not in ("off", "error") and not any(k.hot for k in view.keys):
        line += "\n" + no_hot_keys(view)
    prefixes = [p for p in view.prefixes[:PREFIX_LIMIT] if p.share]
    if prefixes:
        line += "\nprefixes: " + "  ".join(
            f"{display_key(p.pattern, 30)} {p.share * 100:.0f}%" for p in prefixes
        )
    if view.stampedes:
        last = view.stampedes[-1]
        line += f"\nstampedes: {view.stampede_events} in the window; last on {display_key(last.key, 40)}"
        line += f" ({last.writers} writers)"
    return line


def no_hot_keys(view: HotKeysView) -> str:
    """What "no hot keys" means here: the thresholds no key reached."""
    if not view.keys:
        return "no hot keys (no key traffic seen yet)"
    if view.min_share is None:
        return "no hot keys"
    floor = f" and ≥ {view.min_ops:g} ops/s" if view.min_ops else ""
    return f"no hot keys (none has ≥ {view.min_share:g}% of the sampled traffic{floor})"


class HotKeysPanel(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("e", "evict_key", "Evict key")]
    DEFAULT_CSS = """
    HotKeysPanel { height: 1fr; }
    HotKeysPanel > Static { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    HotKeysPanel > #hotkeys-advice { max-height: 2; color: $text; }
    HotKeysPanel > #hotkeys-node { max-height: 2; }
    """

    def __init__(self, instance: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instance = instance
        self.shown_keys: list[bytes] = []  # raw keys in row order, for `e`
        self.advice: InstanceAdvice | None = None

    def compose(self) -> ComposeResult:
        yield Static(status_line(None), id="hotkeys-status", markup=False)
        yield DiffTable(id="hotkeys-table")
        # Advice for the key under the cursor, and the node against its cluster (docs/hotkeys.md).
        yield Static("", id="hotkeys-advice", markup=False)
        yield Static("", id="hotkeys-node", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DiffTable)
        table.set_colours(self.app.get_css_variables())
        table.set_columns(key_columns(self.size.width or self.app.size.width))
        table.cursor_type = "row"

    def on_resize(self, event: events.Resize) -> None:
        table = self.query_one(DiffTable)
        columns = key_columns(event.size.width)
        if list(columns) != table.layout_columns:
            table.set_columns(columns)  # its rows come back with the next show
            app: Any = self.app
            if app.latest is not None:
                self.show_snapshot(app.latest)

    def show_snapshot(self, snap: Snapshot) -> None:
        inst = snap.by_name(self.instance)
        view = inst.extras.get("hotkeys") if inst is not None and inst.extras else None
        status = status_line(view)
        if view is None and inst is not None and LIVE_FACT in inst.facts:  # numbers from Prometheus
            status = f"hot keys come from the daemon that polls this instance: {inst.facts[LIVE_FACT]}"
        self.query_one("#hotkeys-status", Static).update(status)
        self.shown_keys = [k.key for k in ranked(view)] if view is not None else []
        self.query_one(DiffTable).show(key_rows(view) if view is not None else [])
        self.advice = instance_advice(snap, self.instance) if view is not None else None
        self.query_one("#hotkeys-node", Static).update(node_line(self.advice) if view is not None else "")
        self.show_advice()

    def selected_key(self) -> bytes | None:
        row = self.query_one(DiffTable).cursor_row
        return self.shown_keys[row] if 0 <= row < len(self.shown_keys) else None

    def show_advice(self) -> None:
        self.query_one("#hotkeys-advice", Static).update(advice_line(self.advice, self.selected_key()))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_advice()

    def action_evict_key(self) -> None:
        """Evicts the hot key under the cursor, through the confirmation (dry run first)."""
        from cachetop.actions.evict import EvictRequest
        from cachetop.tui.widgets.confirm_evict import request_evict

        row = self.query_one(DiffTable).cursor_row
        if not 0 <= row < len(self.shown_keys):
            self.app.notify("no hot key selected", severity="warning", markup=False)
            return
        request_evict(self.app, self.instance, EvictRequest(keys=(self.shown_keys[row],)))

"""`?`: every key binding, generated from the bindings themselves so it never goes stale."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# (keys, what) in the order a newcomer needs them. tests/tui checks that every binding is here.
# Each fits one line of the box at 80 columns (KEYS_WIDTH + WHAT_WIDTH), so q stays on an 80x24 screen.
KEYS_WIDTH = 13
WHAT_WIDTH = 59
HELP_KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓ PgUp PgDn", "move the selection"),
    ("Home  End", "first / last row"),
    ("enter", "open the instance: charts, commands, slowlog, clients…"),
    ("escape", "back / clear the filter / close this help"),
    ("/", "filter by name or tag (tag:NAME for an exact tag)"),
    ("s S 1…9 w", "sort: next / reverse / column N / worst first (or click)"),
    ("g", "group by first tag (cluster nodes: by shard) on/off"),
    ("c", "fold / unfold every group (enter on a group: that one)"),
    ("← →", "previous / next tab in the instance view"),
    ("e", "Hot keys tab: evict the selected key (dry run, confirm)"),
    ("a  i", "Keyspace tab: analyse now / evict idle keys"),
    ("p", "pause / resume polling (replay: playback)"),
    ("r", "refresh now"),
    ("+  -", "poll less / more often (replay: slower / faster)"),
    ("t", "dark / light theme"),
    ("[ ] { } < >", "replay: 1 frame back / on, 10 back / on, first / last"),
    ("ctrl+p", "command palette: every action by name"),
    ("?", "this help"),
    ("q", "quit"),
)
LEGEND = (
    "Colours follow your [[rule]] thresholds where a rule covers the metric, else the standard "
    "targets: hit ≥ 90%, p99 < 10 ms, memory < 80%, errors < 1%. Σ fleet sums ops/s and weights "
    "the hit ratio by traffic. mem* means no maxmemory (share of host memory)."
)


class HelpScreen(ModalScreen[None]):
    # A modal screen hides the app's bindings, so quitting from here is bound explicitly.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark", "close", "Close"),
        Binding("q", "app.quit", "Quit"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 80; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=True)
        table.add_column(style="bold", no_wrap=True, min_width=KEYS_WIDTH)
        table.add_column(ratio=1)
        for keys, what in HELP_KEYS:
            table.add_row(keys, what)
        with VerticalScroll():
            # q and escape on the first line: on a short terminal the rest scrolls, these stay.
            title = Text("cachetop — keys", style="bold")
            title.append("   q quit · escape close · ↑↓ scroll", style="dim")
            yield Static(title)
            yield Static(table)
            yield Static(Text(LEGEND, style="dim"))

    def action_close(self) -> None:
        self.dismiss()

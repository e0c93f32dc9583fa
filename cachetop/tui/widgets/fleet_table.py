"""The overview table: virtual rows, so 10,000 instances cost what a screenful costs.

A Line API widget (ScrollView): `show(rows)` only stores the row list (whose cells are built
lazily, see overview_rows.Row), and `render_line` draws the header and the rows that are on
screen. A tick's cost does not grow with the fleet, unlike a DataTable holding every row
(about 125 ms per 200x7 update, and seconds at 10,000 rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cachetop.tui.columns import CELL_PADDING, Column
from cachetop.tui.overview_rows import Cell, Row

LEVEL_VARIABLE = {"good": "success", "warn": "warning", "bad": "error"}
HEADER_LINES = 1
BLANK: Cell = ("", None, "")


class FleetTable(ScrollView, can_focus=True):
    """One line per row, a fixed header line, a row cursor; Enter or a click selects."""

    DEFAULT_CSS = """
    FleetTable {
        height: 1fr;
        overflow-x: hidden;
        background: $surface;
        color: $foreground;
        & > .fleet-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .fleet-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .fleet-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"fleet-table--header", "fleet-table--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Select", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=True, repaint=False)

    class RowSelected(Message):
        """Enter or a click on a row."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    class HeaderSelected(Message):
        """A click on a column's header."""

        def __init__(self, column_key: str) -> None:
            super().__init__()
            self.column_key = column_key

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.layout_columns: list[Column] = []
        self._rows: list[Row] = []
        self.sort_marker: tuple[str, bool] | None = None  # (column key, descending): ▲/▼ in its header
        self._index: dict[str, int] = {}
        self._colours: dict[str, str] = {}
        self._styles: dict[tuple[str | None, str], Style] = {}
        self.shows = 0  # how many times show() ran (bench/tui.py)
        self.lines_rendered = 0  # row lines drawn: stays near the screen height per tick
        self.lines_refreshed = 0  # lines show() asked to redraw because they changed

    # --- what the table holds ------------------------------------------------------------------

    def set_columns(self, columns: Sequence[Column]) -> None:
        self.layout_columns = list(columns)
        self._resize_virtual()
        self.refresh()

    def set_sort_marker(self, key: str | None, descending: bool) -> None:
        marker = (key, descending) if key else None
        if marker != self.sort_marker:
            self.sort_marker = marker
            self.refresh(Region(0, 0, self.scrollable_content_region.width, HEADER_LINES))

    def header_text(self, col: Column) -> str:
        """The column's label, with ▲ (ascending) or ▼ (descending) on the sorted column; a
        label too wide for its marker gives up its last characters, never the marker."""
        if self.sort_marker is None or self.sort_marker[0] != col.key:
            return col.label
        mark = "▼" if self.sort_marker[1] else "▲"
        label = col.label if cell_len(col.label) < col.width else set_cell_size(col.label, col.width - 1)
        return label + mark

    def set_colours(self, variables: dict[str, str]) -> None:
        self._colours = {level: variables.get(var, "") for level, var in LEVEL_VARIABLE.items()}
        self._styles.clear()
        self.refresh()

    def show(self, rows: Sequence[Row]) -> None:
        """Shows `rows` in this order; the cursor stays on the row it was on (by key). Only the
        lines on screen whose row or cells changed are redrawn (a terminal over SSH gets only
        what changed)."""
        selected = self.selected_key()
        before = self._on_screen()
        cursor, top = self.cursor_row, round(self.scroll_y)
        self._rows = list(rows)
        self._index = {row.key: i for i, row in enumerate(self._rows)}
        self.shows += 1
        self._resize_virtual()
        if selected in self._index:
            self._set_cursor(self._index[selected])
        else:
            self._set_cursor(min(self.cursor_row, max(0, len(self._rows) - 1)))
        if (self.cursor_row, round(self.scroll_y)) != (cursor, top):
            self.refresh()
            return
        after = self._on_screen()
        width = self.scrollable_content_region.width
        for line in range(max(len(before), len(after))):
            old = before[line] if line < len(before) else None
            new = after[line] if line < len(after) else None
            if old != new:
                self.lines_refreshed += 1
                self.refresh(Region(0, line + HEADER_LINES, width, 1))

    def _on_screen(self) -> list[tuple[str, dict[str, Cell]]]:
        top = round(self.scroll_y)
        return [(row.key, row.cells) for row in self._rows[top : top + self._page_rows()]]

    def _resize_virtual(self) -> None:
        width = sum(c.width + CELL_PADDING for c in self.layout_columns)
        self.virtual_size = Size(width, len(self._rows) + HEADER_LINES)

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def row_keys(self) -> list[str]:
        return [row.key for row in self._rows]

    def get_row_index(self, key: str) -> int:
        """The row's position; KeyError when it is not shown (filtered out, folded)."""
        return self._index[key]

    def cell_text(self, key: str, column: str) -> str:
        """What a cell shows ("" when the row is not shown): for tests."""
        index = self._index.get(key)
        return "" if index is None else self._rows[index].cells.get(column, BLANK)[0]

    def selected_key(self) -> str | None:
        if not self._rows:
            return None
        return self._rows[min(self.cursor_row, len(self._rows) - 1)].key

    # --- the cursor ----------------------------------------------------------------------------

    def move_cursor(self, *, row: int) -> None:
        self._set_cursor(row)

    def _set_cursor(self, row: int) -> None:
        row = max(0, min(row, len(self._rows) - 1))
        if row != self.cursor_row:
            self.cursor_row = row
            self.refresh()
        self._scroll_to_cursor()

    def _page_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - HEADER_LINES)

    def _scroll_to_cursor(self) -> None:
        top = round(self.scroll_y)
        page = self._page_rows()
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + page:
            self.scroll_to(y=self.cursor_row - page + 1, animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        self._set_cursor(self.cursor_row + step)

    def action_page(self, direction: int) -> None:
        self._set_cursor(self.cursor_row + direction * self._page_rows())

    def action_jump(self, row: int) -> None:
        self._set_cursor(row if row >= 0 else len(self._rows) - 1)

    def action_select(self) -> None:
        key = self.selected_key()
        if key is not None:
            self.post_message(self.RowSelected(key))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y < HEADER_LINES:
            x = 0
            for col in self.layout_columns:
                x += col.width + CELL_PADDING
                if offset.x < x:
                    self.post_message(self.HeaderSelected(col.key))
                    return
            return
        row = offset.y - HEADER_LINES + round(self.scroll_y)
        if 0 <= row < len(self._rows):
            self._set_cursor(row)
            self.action_select()

    # --- drawing ---------------------------------------------------------------------------------

    def _style(self, level: str | None, emphasis: str) -> Style:
        style = self._styles.get((level, emphasis))
        if style is None:
            text = " ".join(s for s in (self._colours.get(level or "", ""), emphasis) if s)
            style = self._styles[(level, emphasis)] = Style.parse(text) if text else Style()
        return style

    def _segments(self, cells: dict[str, Cell], base: Style, header: bool = False) -> list[Segment]:
        segments = []
        for col in self.layout_columns:
            if header:
                text, style = self.header_text(col), base
            else:
                text, level, emphasis = cells.get(col.key, BLANK)
                style = base + self._style(level, emphasis)
            segments.append(Segment(" " + fit(text, col.width, col.right) + " ", style))
        return segments

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y < HEADER_LINES:
            header = self.get_component_rich_style("fleet-table--header")
            strip = Strip(self._segments({}, base + header, header=True))
            return strip.extend_cell_length(width, base + header).crop(0, width)
        index = y - HEADER_LINES + round(self.scroll_y)
        if index >= len(self._rows):
            return Strip.blank(width, base)
        self.lines_rendered += 1
        style = base
        if index == self.cursor_row:
            style = base + self.get_component_rich_style("fleet-table--cursor")
        strip = Strip(self._segments(self._rows[index].cells, style))
        return strip.extend_cell_length(width, style).crop(0, width)


def fit(text: str, width: int, right: bool) -> str:
    """`text` in exactly `width` cells: cut with an ellipsis when too long, padded to its side."""
    length = cell_len(text)
    if length > width:
        return set_cell_size(text, max(0, width - 1)) + "…" if width > 0 else ""
    pad = " " * (width - length)
    return pad + text if right else text + pad

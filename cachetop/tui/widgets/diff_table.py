"""Tables updated by diff (command stats, slowlog, clients, facts; the overview, which may hold
10,000 rows, is virtual: widgets/fleet_table.py).

Per tick only cells whose text or colour changed are written (update_cell, inside
app.batch_update), column widths are fixed by the layout, and rows are re-ordered with
DataTable.sort only when the order actually changed. A resize or a theme change rebuilds.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from cachetop.tui.columns import Column
from cachetop.tui.overview_rows import Cell, Row

LEVEL_VARIABLE = {"good": "success", "warn": "warning", "bad": "error"}


class DiffTable(DataTable[Text]):
    """DataTable with fixed-width columns and a diff-based `show(rows)`."""

    DEFAULT_CSS = """
    DiffTable { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, cell_padding=1, **kwargs)  # type: ignore[arg-type]
        self.layout_columns: list[Column] = []
        self._cells: dict[str, dict[str, Cell]] = {}  # what each row shows now
        self._name_cells: dict[str, Text] = {}  # the very objects in the table, for sort()
        self._order: list[str] = []
        self._colours: dict[str, str] = {}
        self.full_rebuilds = 0
        self.cell_updates = 0

    # --- layout -------------------------------------------------------------------------------

    def set_columns(self, columns: Sequence[Column]) -> None:
        self.layout_columns = list(columns)
        self.clear(columns=True)
        for col in self.layout_columns:
            label = Text(col.label, justify="right" if col.right else "left", style="bold")
            self.add_column(label, width=col.width, key=col.key)
        self._cells.clear()
        self._name_cells.clear()
        self._order = []
        self.full_rebuilds += 1

    def set_colours(self, variables: dict[str, str]) -> None:
        self._colours = {level: variables.get(var, "") for level, var in LEVEL_VARIABLE.items()}
        self._cells.clear()  # re-style every cell on the next show()
        self._order = []

    # --- cells --------------------------------------------------------------------------------

    def _text(self, col: Column, cell: Cell) -> Text:
        text, level, emphasis = cell
        style = " ".join(s for s in (self._colours.get(level or "", ""), emphasis) if s)
        # Text objects are never parsed as markup: server-supplied names stay literal.
        return Text(
            text, style=style, justify="right" if col.right else "left", no_wrap=True, overflow="ellipsis"
        )

    def show(self, rows: Sequence[Row]) -> None:
        """Makes the table show `rows` in this order, touching as little as possible."""
        wanted = [r.key for r in rows]
        present = set(self._cells)
        with self.app.batch_update():
            if not present.issubset(wanted) and len(present) > 0:
                for key in present - set(wanted):
                    if key in self.rows:
                        self.remove_row(key)
                    self._cells.pop(key, None)
                    self._name_cells.pop(key, None)
            for row in rows:
                old = self._cells.get(row.key)
                if old is None:
                    texts = [
                        self._text(col, row.cells.get(col.key, ("", None, ""))) for col in self.layout_columns
                    ]
                    self.add_row(*texts, key=row.key)
                    if texts:
                        self._name_cells[row.key] = texts[0]
                    self._cells[row.key] = dict(row.cells)
                    continue
                for col in self.layout_columns:
                    cell = row.cells.get(col.key, ("", None, ""))
                    if old.get(col.key) != cell:
                        text = self._text(col, cell)
                        self.update_cell(row.key, col.key, text)
                        self.cell_updates += 1
                        if col is self.layout_columns[0]:
                            self._name_cells[row.key] = text
                        old[col.key] = cell
            if wanted != self._current_order():
                rank = {id(self._name_cells[k]): i for i, k in enumerate(wanted) if k in self._name_cells}
                first = self.layout_columns[0].key
                self.sort(first, key=lambda cell: rank.get(id(cell), len(rank)))
            self._order = wanted

    def _current_order(self) -> list[str]:
        return [str(row.key.value) for row in self.ordered_rows]

    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # an empty or shrinking table: nothing is selected
            return None
        return str(key.value) if key.value is not None else None

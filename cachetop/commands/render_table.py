"""Tables and lines the command-line commands print (`snapshot`, `hotkeys`, `config check`, ...).

On a terminal they are rich tables, coloured, fitted to its width. Anywhere else (a pipe, a file,
`less`) they are plain text: no escape codes, no box-drawing rules, columns aligned with spaces
and as wide as their widest cell, so a line is never wrapped or cut at 80 columns and `grep`,
`awk` and `cut` see one row per line.

Names and server-supplied text are escaped once (safe_text.display_key) by the callers and are
never read as markup.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cachetop.metrics import registry
from cachetop.model import Snapshot, Status
from cachetop.util.safe_text import display_key

NAME_MAX = 60  # on a terminal, instance names (from a config, or a cluster's addresses) are cut here
PLAIN_NAME_MAX = 300  # in plain text there is no width to fit: only a runaway name is cut
PLAIN_GAP = "  "  # between plain-text columns

STATUS_STYLE = {
    Status.UP: "green",
    Status.DOWN: "bold red",
    Status.AUTH_FAILED: "bold red",
    Status.LOADING: "yellow",
}

Cell = str | Text


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # closed or replaced by something without a fd
        return False


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    right: bool = False  # numbers are right-aligned
    min_width: int | None = None


class Output:
    """Where a command prints its tables and lines: a rich console on a terminal, plain text
    (see the module doc) anywhere else."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.plain = not is_terminal(self.stream)
        # soft_wrap: a long line is left to the terminal, never broken by rich at a guessed width.
        self.console = (
            None if self.plain else Console(file=self.stream, highlight=False, soft_wrap=True, emoji=False)
        )

    @property
    def name_max(self) -> int:
        return PLAIN_NAME_MAX if self.plain else NAME_MAX

    def line(self, text: Cell = "") -> None:
        if self.console is None:
            self.stream.write(_plain(text).rstrip() + "\n")
        else:
            self.console.print(text)

    def table(self, title: Cell | None, columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> None:
        if self.console is None:
            if title is not None:
                self.line(title)
            for text in plain_columns(columns, rows):
                self.stream.write(text + "\n")
            return
        table = Table(
            title=title,
            title_justify="left",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            padding=(0, 1, 0, 0),
            show_edge=False,
            pad_edge=False,
            collapse_padding=True,
        )
        for column in columns:
            table.add_column(
                column.header,
                justify="right" if column.right else "left",
                no_wrap=True,
                overflow="ellipsis",
                min_width=column.min_width,
            )
        for row in rows:
            table.add_row(*row)
        self.console.print(table, soft_wrap=False)

    def flush(self) -> None:
        self.stream.flush()


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def plain_columns(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> list[str]:
    """A header line and one line per row, columns separated by two spaces, no trailing blanks."""
    grid = [[c.header for c in columns]] + [[_plain(cell) for cell in row] for row in rows]
    widths = [max(cell_len(line[i]) for line in grid) for i in range(len(columns))]
    lines = []
    for line in grid:
        cells = []
        for column, width, cell in zip(columns, widths, line, strict=True):
            pad = " " * (width - cell_len(cell))
            cells.append(pad + cell if column.right else cell + pad)
        lines.append(PLAIN_GAP.join(cells).rstrip())
    return lines


def snapshot_columns() -> tuple[Column, ...]:
    """instance, status, then each metric with a column in the registry (MetricInfo.column)."""
    return (
        Column("instance"),
        Column("status"),
        *(Column(info.header, right=True, min_width=len(info.header)) for info in registry.with_columns()),
    )


def print_snapshot(snap: Snapshot, out: Output) -> None:
    metrics = registry.with_columns()
    rows: list[list[Cell]] = []
    for inst in snap.instances:
        row: list[Cell] = [
            Text(display_key(inst.name, out.name_max)),
            Text(str(inst.status), style=STATUS_STYLE.get(inst.status, "")),
        ]
        for info in metrics:
            mark = info.column.mark if info.column is not None else None
            row.append(info.text(inst.metrics.get(info.name)) + (mark(inst) if mark is not None else ""))
        rows.append(row)
    out.table(f"cachetop snapshot · window {snap.window_s:g}s", snapshot_columns(), rows)
    for inst in snap.instances:
        if inst.error:
            line = Text(f"{display_key(inst.name, out.name_max)}: ", style="bold")
            line.append(
                f"{inst.status}: {display_key(inst.error, 200)}", style=STATUS_STYLE.get(inst.status, "")
            )
            out.line(line)
    if any(i.memory_max_from == "system" for i in snap.instances):
        out.line(Text("* no maxmemory set: memory is shown against the host's total memory", style="dim"))

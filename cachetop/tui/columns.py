"""The overview's columns: what each shows, how wide it is, and which go first on a small screen.

The metric columns come from the registry (MetricInfo.column); only the instance's name, kind,
status, trend line and note are this module's own.

Pure code (no Textual). Widths are fixed per layout so the table never measures its cells on a
tick; a resize picks a new layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cachetop.metrics import registry
from cachetop.metrics.info import MetricInfo
from cachetop.model import InstanceMetrics, Status
from cachetop.util.safe_text import display_key

STATUS_LABEL = {
    Status.UP: "up",
    Status.DOWN: "DOWN",
    Status.AUTH_FAILED: "AUTH",
    Status.LOADING: "LOAD",
    Status.UNKNOWN: "…",
}
STALE_LABEL = "stale"  # up, but its poll is late: the row shows its last values (InstanceMetrics.stale)


def status_label(inst: InstanceMetrics) -> str:
    if inst.stale:
        return STALE_LABEL
    return STATUS_LABEL.get(inst.status, str(inst.status))


# DataTable pads each cell by one on both sides.
CELL_PADDING = 2


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int
    # Lower survives longer when the terminal is narrow (0 is never dropped).
    keep: int
    metric: str | None = None  # the metric it shows, for colouring and sorting
    right: bool = True
    text: Callable[[InstanceMetrics], str] | None = None
    grow: int = 0  # extra width it may take on a wide screen


def metric_column(info: MetricInfo) -> Column:
    """The overview column a registered metric declares (MetricInfo.column); empty while down."""
    spec = info.column
    assert spec is not None
    render = spec.narrow or info.text
    mark = spec.mark

    def text(inst: InstanceMetrics) -> str:
        if inst.status != Status.UP:
            return ""
        value = inst.metrics.get(info.name)
        out = render(None if value is None else float(value))
        return out + mark(inst) if mark is not None else out

    return Column(spec.key, info.header, spec.width, spec.keep, info.name, text=text)


def _note(inst: InstanceMetrics) -> str:
    if inst.status != Status.UP:
        return display_key(inst.error or str(inst.status), 60)
    if inst.stale:
        return "poll late: last values"
    if inst.memory_max_from == "system":
        return "no maxmemory"
    return ""


LEADING: tuple[Column, ...] = (
    Column("name", "instance", 14, 0, right=False, grow=22),
    Column("kind", "kind", 9, 11, right=False, text=lambda i: i.kind),
    Column("status", "status", 6, 0, right=False, text=status_label),
)
TRAILING: tuple[Column, ...] = (
    Column("trend", "ops/s trend", 12, 8, right=False, grow=28),
    Column("note", "note", 14, 12, right=False, text=_note, grow=30),
)
_built: tuple[int, tuple[Column, ...]] | None = None


def overview_columns() -> tuple[Column, ...]:
    """Every overview column: name, kind, status, then each registered metric's column in registry
    order (metrics/registry.py), then the trend and the note. Rebuilt when the registry changes."""
    global _built
    if _built is None or _built[0] != registry.version():
        metric_columns = tuple(metric_column(info) for info in registry.with_columns())
        _built = (registry.version(), (*LEADING, *metric_columns, *TRAILING))
    return _built[1]


def layout(width: int, columns: Sequence[Column] | None = None, reserve: int = 2) -> list[Column]:
    """The columns that fit in `width` cells, in display order, with spare width handed to the
    growable columns. `reserve` leaves room for a vertical scrollbar."""
    if columns is None:
        columns = overview_columns()
    budget = width - reserve
    chosen: set[str] = set()
    used = 0
    for col in sorted(columns, key=lambda c: c.keep):
        need = col.width + CELL_PADDING
        if col.keep == 0 or used + need <= budget:
            chosen.add(col.key)
            used += need
    picked = [c for c in columns if c.key in chosen]
    spare = max(0, budget - used)
    out = []
    for col in picked:
        extra = min(col.grow, spare)
        spare -= extra
        out.append(
            Column(col.key, col.label, col.width + extra, col.keep, col.metric, col.right, col.text, col.grow)
        )
    return out


def sort_value(inst: InstanceMetrics, key: str) -> tuple[int, float | str]:
    """A sort key that puts instances with no value last whatever the direction chosen later."""
    if key in ("name", "kind"):
        return (0, (inst.name if key == "name" else inst.kind).lower())
    if key == "status":
        return (0, "0" if inst.status == Status.UP else "1" + str(inst.status))
    col = next((c for c in overview_columns() if c.key == key), None)
    metric = col.metric if col else None
    if key == "trend":
        metric = "ops_per_sec"
    value = inst.metrics.get(metric) if metric and inst.status == Status.UP else None
    return (0, float(value)) if value is not None else (1, 0.0)


def matches(inst: InstanceMetrics, query: str) -> bool:
    """`/` filter: a case-insensitive substring of the name or of a tag; `tag:x` is an exact tag."""
    query = query.strip().lower()
    if not query:
        return True
    if query.startswith("tag:"):
        return query[4:] in (t.lower() for t in inst.tags)
    return query in inst.name.lower() or any(query in t.lower() for t in inst.tags) or query in inst.kind

"""The overview's columns: what each shows, how wide it is, and which go first on a small screen.

Pure code (no Textual). Widths are fixed per layout so the table never measures its cells on a
tick; a resize picks a new layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cachetop.model import InstanceMetrics, Status
from cachetop.util import format as fmt
from cachetop.util.safe_text import display_key

STATUS_LABEL = {
    Status.UP: "up",
    Status.DOWN: "DOWN",
    Status.AUTH_FAILED: "AUTH",
    Status.LOADING: "LOAD",
    Status.UNKNOWN: "…",
}
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


def _m(name: str, render: Callable[[float | None], str]) -> Callable[[InstanceMetrics], str]:
    return lambda inst: render(inst.metrics.get(name)) if inst.status == Status.UP else ""


def _mem(inst: InstanceMetrics) -> str:
    if inst.status != Status.UP:
        return ""
    text = fmt.pct(inst.metrics.get("memory_used_pct"), 0)
    # No maxmemory: the share is of the host's memory, which is a different promise.
    return text + "*" if inst.memory_max_from == "system" else text


def _note(inst: InstanceMetrics) -> str:
    if inst.status != Status.UP:
        return display_key(inst.error or str(inst.status), 60)
    if inst.memory_max_from == "system":
        return "no maxmemory"
    return ""


COLUMNS: tuple[Column, ...] = (
    Column("name", "instance", 14, 0, right=False, grow=22),
    Column("kind", "kind", 9, 11, right=False, text=lambda i: i.kind),
    Column("status", "status", 6, 0, right=False, text=lambda i: STATUS_LABEL.get(i.status, str(i.status))),
    Column("hit", "hit", 6, 1, "hit_ratio", text=_m("hit_ratio", fmt.pct)),
    Column("ops", "ops/s", 7, 1, "ops_per_sec", text=_m("ops_per_sec", fmt.rate)),
    Column("p50", "p50", 6, 9, "latency_p50_ms", text=_m("latency_p50_ms", fmt.ms)),
    Column("p99", "p99", 6, 2, "latency_p99_ms", text=_m("latency_p99_ms", fmt.ms)),
    Column("mem", "mem", 5, 3, "memory_used_pct", text=_mem),
    Column("err", "err", 6, 4, "error_rate", text=_m("error_rate", lambda v: fmt.pct(v, 2))),
    Column("evict", "evict/s", 7, 5, "evictions_per_sec", text=_m("evictions_per_sec", fmt.rate)),
    Column("conn", "conn", 5, 10, "connections", text=_m("connections", fmt.short_count)),
    Column("trend", "ops/s trend", 12, 8, right=False, grow=28),
    Column("note", "note", 14, 12, right=False, text=_note, grow=30),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


def layout(width: int, columns: Sequence[Column] = COLUMNS, reserve: int = 2) -> list[Column]:
    """The columns that fit in `width` cells, in display order, with spare width handed to the
    growable columns. `reserve` leaves room for a vertical scrollbar."""
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
    col = next((c for c in COLUMNS if c.key == key), None)
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

"""What the overview table shows, as plain data: rows of (text, level) cells.

Pure code (no Textual): sorting, filtering, grouping by tag and the fleet roll-up are decided
here and tested with plain Snapshots. The widget only turns levels into theme colours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cachetop import format as fmt
from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.safe_text import display_key
from cachetop.tui.columns import COLUMNS, Column, matches, sort_value
from cachetop.tui.health import Health
from cachetop.tui.history import History, fleet_summary, sparkline

FLEET_KEY = "__fleet__"
GROUP_PREFIX = "__group__:"
UNTAGGED = "(untagged)"
# Sorting by these puts the largest first; the rest (names, hit ratio) smallest first, so the
# first press of a key always shows the worst or busiest instance at the top.
DESCENDING_FIRST = {"ops", "p50", "p99", "mem", "err", "evict", "conn", "trend"}

# Above this many instances the groups start folded (a screen shows the groups, not a
# 10,000-line list); `c` unfolds them all, enter one.
FOLD_ABOVE = 200

# (text, level, emphasis): level is good/warn/bad/None; emphasis is "bold", "dim" or "".
Cell = tuple[str, str | None, str]


@dataclass
class ViewState:
    """What the user chose: sort column and direction, filter text, grouping."""

    sort_key: str | None = None  # None: config order
    descending: bool = False
    query: str = ""
    group_by_tag: bool = True
    collapsed: set[str] = field(default_factory=set)  # groups shown as their summary row only
    folded_for_size: bool = False  # the first large snapshot folded every group once

    def toggle_group(self, group: str) -> None:
        self.collapsed ^= {group}

    def fold_if_large(self, instances: Sequence[InstanceMetrics]) -> None:
        """The first time the fleet is larger than FOLD_ABOVE, every group starts folded."""
        if self.folded_for_size or len(instances) <= FOLD_ABOVE:
            return
        self.folded_for_size = True
        if any(i.tags or i.shard for i in instances):
            self.collapsed |= {group_of(i) for i in instances}

    def sort_by(self, key: str) -> None:
        if self.sort_key == key:
            self.descending = not self.descending
        else:
            self.sort_key = key
            self.descending = key in DESCENDING_FIRST

    def describe(self) -> str:
        parts = []
        if self.sort_key:
            label = next((c.label for c in COLUMNS if c.key == self.sort_key), self.sort_key)
            parts.append(f"sort {label} {'↓' if self.descending else '↑'}")
        if self.query:
            parts.append(f"filter {self.query!r}")
        return " · ".join(parts)


class Row:
    """One table row. `cells` may be given, or made on first use by `make`: the overview builds
    a Row per instance every tick but only the rows on screen are ever drawn, so a fleet of
    10,000 formats a screenful of cells, not 10,000 rows of them."""

    __slots__ = ("_cells", "_make", "extra", "instance", "key")

    def __init__(
        self,
        key: str,
        cells: dict[str, Cell] | None = None,
        instance: str | None = None,  # the instance name, for Enter
        extra: dict[str, str] | None = None,
        *,
        make: Callable[[], dict[str, Cell]] | None = None,
    ) -> None:
        self.key = key
        self._cells = cells
        self._make = make
        self.instance = instance
        self.extra = extra if extra is not None else {}

    @property
    def cells(self) -> dict[str, Cell]:
        if self._cells is None:
            self._cells = self._make() if self._make is not None else {}
            self._make = None
        return self._cells

    def __repr__(self) -> str:
        return f"Row({self.key!r})"


def hot_badge(inst: InstanceMetrics) -> str:
    """The overview's hot-key badge: how many keys pass the hot thresholds, when the hot-key
    collector attached its result to the instance (extras["hotkeys"])."""
    found = inst.extras.get("hotkeys") if inst.extras else None
    if found is None:
        return ""
    n = int(getattr(found, "hot_count", 0) or 0)
    return f" ♨{n}" if n else ""


def ordered(instances: Sequence[InstanceMetrics], view: ViewState) -> list[InstanceMetrics]:
    picked = [i for i in instances if matches(i, view.query)]
    if view.sort_key is None:
        return picked
    key = view.sort_key
    known = [i for i in picked if sort_value(i, key)[0] == 0]
    missing = [i for i in picked if sort_value(i, key)[0] == 1]
    known.sort(key=lambda i: sort_value(i, key)[1], reverse=view.descending)
    return known + missing  # no value (down, no reads) always last


def instance_cells(
    inst: InstanceMetrics, columns: Sequence[Column], history: History, health: Health
) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    up = inst.status == Status.UP
    for col in columns:
        if col.key == "name":
            cells[col.key] = (display_key(inst.name, col.width - 3) + hot_badge(inst), None, "")
        elif col.key == "trend":
            values = history.of(inst.name).series["ops_per_sec"]
            cells[col.key] = (
                sparkline(values, col.width, floor=None),
                "good" if up else None,
                "dim" if not up else "",
            )
        elif col.key == "status":
            level = "good" if up else None if inst.status == Status.UNKNOWN else "bad"
            cells[col.key] = (col.text(inst) if col.text else "", level, "" if up else "bold")
        elif col.key == "note":
            cells[col.key] = (col.text(inst) if col.text else "", None if up else "bad", "")
        else:
            text = col.text(inst) if col.text else ""
            level = health.level(inst, col.metric) if (col.metric and up) else None
            cells[col.key] = (text, level, "bold" if level == "bad" else "")
    return cells


def summary_cells(
    label: str,
    members: Sequence[InstanceMetrics],
    columns: Sequence[Column],
    ops_series: Sequence[float | None],
) -> dict[str, Cell]:
    summary = fleet_summary(members)
    cells: dict[str, Cell] = {c.key: ("", None, "dim") for c in columns}
    if "name" in cells:
        cells["name"] = (label, None, "bold")
    if "status" in cells:
        status = f"{summary.up}/{summary.total}"
        width = next(c.width for c in columns if c.key == "status")
        if len(status) > width and summary.total:  # 4960/10000 does not fit: the share up does
            status = f"{int(100 * summary.up / summary.total)}% up"
        cells["status"] = (status, "good" if summary.healthy else "bad", "bold")
    if "hit" in cells:
        cells["hit"] = (fmt.pct(summary.hit_ratio), None, "bold")
    if "ops" in cells:
        cells["ops"] = (fmt.rate(summary.ops_per_sec) if summary.up else fmt.NA, None, "bold")
    if "trend" in cells:
        width = next(c.width for c in columns if c.key == "trend")
        cells["trend"] = (sparkline(ops_series, width, floor=None), None, "")
    return cells


def build_rows(
    snap: Snapshot, history: History, view: ViewState, columns: Sequence[Column], health: Health
) -> list[Row]:
    """The fleet row first, then instances in the chosen order; grouped by first tag when the
    fleet has tags and grouping is on."""
    rows = [
        Row(
            FLEET_KEY,
            summary_cells(f"Σ fleet ({len(snap.instances):,})", snap.instances, columns, history.fleet_ops),
        )
    ]
    shown = ordered(snap.instances, view)
    grouped = view.group_by_tag and any(i.tags or i.shard for i in snap.instances)

    def row(inst: InstanceMetrics) -> Row:
        return Row(inst.name, None, inst.name, make=lambda: instance_cells(inst, columns, history, health))

    if not grouped:
        rows += [row(i) for i in shown]
        return rows
    groups: dict[str, list[InstanceMetrics]] = {}
    for inst in shown:
        groups.setdefault(group_of(inst), []).append(inst)
    for tag in sorted(groups, key=lambda t: (t == UNTAGGED, t.lower())):
        members = groups[tag]
        folded = tag in view.collapsed
        label = f"{'▸' if folded else '▾'} {display_key(tag, 24)} ({len(members):,})"
        rows.append(
            Row(
                GROUP_PREFIX + tag,
                make=lambda label=label, members=members: summary_cells(label, members, columns, ()),
            )
        )
        if not folded:
            rows += [row(i) for i in members]
    return rows


def group_of(inst: InstanceMetrics) -> str:
    """Cluster nodes group by shard (a master and its replicas); other instances by first tag."""
    if inst.shard:
        cluster = inst.name.split("/", 1)[0]
        return f"{cluster} shard {inst.shard}"
    return inst.tags[0] if inst.tags else UNTAGGED

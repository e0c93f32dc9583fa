"""What the overview table shows, as plain data: rows of (text, level) cells.

Pure code (no Textual): sorting, filtering, grouping by tag and the fleet roll-up are decided
here and tested with plain Snapshots. The widget only turns levels into theme colours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cachetop.analysis.node_balance import DEFAULT_TARGET_IMBALANCE
from cachetop.analysis.snapshot_advice import cluster_of, shard_imbalance
from cachetop.model import METRICS, InstanceMetrics, Snapshot, Status
from cachetop.tui.columns import Column, matches, overview_columns, sort_value
from cachetop.tui.health import Health
from cachetop.tui.history import History, fleet_summary, sparkline
from cachetop.tui.labels import elide_common, node_label
from cachetop.util import format as fmt
from cachetop.util.safe_text import display_key

FLEET_KEY = "__fleet__"
GROUP_PREFIX = "__group__:"
UNTAGGED = "(untagged)"
# Sorting by these puts the largest first, as does sorting by a metric unless higher is better
# (MetricInfo.better); the rest (names, hit ratio) smallest first, so the first press of a key
# always shows the worst or busiest instance at the top.
DESCENDING_FIRST = {"status", "trend"}


def descending_first(key: str) -> bool:
    if key in DESCENDING_FIRST:
        return True
    col = next((c for c in overview_columns() if c.key == key), None)
    info = METRICS.get(col.metric) if col is not None and col.metric else None
    return info is not None and info.better != "higher"


# A trend line starts at its own lowest point (so a busy instance's dips show) and spans at
# least 10 ops/s and a fifth of its peak: 1 command/s on an idle instance, or 1% on a busy one,
# stays a low line instead of a full-height surge.
TREND_MIN_SPAN = 10.0
TREND_MIN_SHARE = 0.2

# The alert marker in the status cell (the header badge uses the same signs).
ALERT_MARK = {"firing": "▲", "pending": "△"}
# Worst first: down, then firing, then pending, then the rest.
URGENCY_DOWN, URGENCY_FIRING, URGENCY_PENDING, URGENCY_NONE = 0, 1, 2, 3

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
    worst_first: bool = True  # down and alerting instances (and their groups) pin to the top
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
            self.descending = descending_first(key)

    def describe(self) -> str:
        parts = []
        if self.sort_key:
            label = next((c.label for c in overview_columns() if c.key == self.sort_key), self.sort_key)
            parts.append(f"sort {label} {'▼' if self.descending else '▲'}")
        if not self.worst_first:
            parts.append("worst first off")
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


def urgency(inst: InstanceMetrics, alerts: Mapping[str, str]) -> int:
    """How badly an instance needs a look: down, an alert firing, pending, or none."""
    if inst.status not in (Status.UP, Status.UNKNOWN):
        return URGENCY_DOWN
    state = alerts.get(inst.name)
    if state == "firing":
        return URGENCY_FIRING
    return URGENCY_PENDING if state == "pending" else URGENCY_NONE


def ordered(
    instances: Sequence[InstanceMetrics], view: ViewState, alerts: Mapping[str, str] | None = None
) -> list[InstanceMetrics]:
    """Filtered, sorted, then (worst first) down and alerting instances moved to the top, each
    kind keeping the chosen order among itself."""
    picked = [i for i in instances if matches(i, view.query)]
    if view.sort_key is not None:
        key = view.sort_key
        known = [i for i in picked if sort_value(i, key)[0] == 0]
        missing = [i for i in picked if sort_value(i, key)[0] == 1]
        known.sort(key=lambda i: sort_value(i, key)[1], reverse=view.descending)
        picked = known + missing  # no value (down, no reads) last, unless pinned below
    if view.worst_first:
        marks = alerts or {}
        picked.sort(key=lambda i: urgency(i, marks))  # stable: the chosen order within each kind
    return picked


def instance_cells(
    inst: InstanceMetrics,
    columns: Sequence[Column],
    history: History,
    health: Health,
    label: str | None = None,
    alert: str | None = None,
) -> dict[str, Cell]:
    """`label` is the name to show (a cluster node's own address); `alert` firing/pending/None."""
    cells: dict[str, Cell] = {}
    up = inst.status == Status.UP
    for col in columns:
        if col.key == "name":
            badge = hot_badge(inst)
            name = label if label is not None else display_key(inst.name, 200)
            cells[col.key] = (fit_end(name, col.width - len(badge)) + badge, None, "")
        elif col.key == "trend":
            values = history.of(inst.name).series["ops_per_sec"]
            cells[col.key] = (
                trend(values, col.width),
                "good" if up else None,
                "dim" if not up else "",
            )
        elif col.key == "status":
            level = (
                "warn" if inst.stale else "good" if up else None if inst.status == Status.UNKNOWN else "bad"
            )
            text = col.text(inst) if col.text else ""
            mark = ALERT_MARK.get(alert or "")
            if mark:
                text = f"{mark} {text}"
                level = "bad" if alert == "firing" else level if not up else "warn"
            cells[col.key] = (text, level, "" if up and not mark else "bold")
        elif col.key == "note":
            cells[col.key] = (col.text(inst) if col.text else "", None if up else "bad", "")
        else:
            text = col.text(inst) if col.text else ""
            level = health.level(inst, col.metric) if (col.metric and up) else None
            cells[col.key] = (text, level, "bold" if level == "bad" else "")
    return cells


def trend(values: Iterable[float | None], width: int) -> str:
    return sparkline(values, width, floor=None, min_span=TREND_MIN_SPAN, min_share=TREND_MIN_SHARE)


def fit_end(text: str, width: int) -> str:
    """`text` cut to `width` characters with an ellipsis (the table cuts too, but would cut the
    hot badge that follows instead of the name)."""
    return text if len(text) <= width else (text[: max(0, width - 1)] + "…" if width > 0 else "")


def summary_cells(
    label: str,
    members: Sequence[InstanceMetrics],
    columns: Sequence[Column],
    ops_series: Sequence[float | None],
    alerts: Mapping[str, str] | None = None,
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
        states = {alerts.get(i.name) for i in members} if alerts else set()
        mark = (
            ALERT_MARK["firing"]
            if "firing" in states
            else ALERT_MARK["pending"]
            if "pending" in states
            else ""
        )
        if mark and len(status) + 2 <= width:
            status = f"{mark} {status}"
        healthy = summary.healthy and "firing" not in states
        cells["status"] = (status, "good" if healthy else "bad", "bold")
    if "hit" in cells:
        cells["hit"] = (fmt.pct(summary.hit_ratio), None, "bold")
    if "ops" in cells:
        cells["ops"] = (fmt.rate(summary.ops_per_sec) if summary.up else fmt.NA, None, "bold")
    if "trend" in cells:
        width = next(c.width for c in columns if c.key == "trend")
        cells["trend"] = (trend(ops_series, width), None, "")
    return cells


def build_rows(
    snap: Snapshot,
    history: History,
    view: ViewState,
    columns: Sequence[Column],
    health: Health,
    alerts: Mapping[str, str] | None = None,
) -> list[Row]:
    """The fleet row first, then instances in the chosen order (worst first: down and alerting
    on top); grouped by first tag or cluster shard when the fleet has them and grouping is on,
    groups ordered by their worst member. `alerts` maps instance names to firing/pending."""
    marks = alerts or {}
    rows = [
        Row(
            FLEET_KEY,
            summary_cells(f"Σ fleet ({len(snap.instances):,})", snap.instances, columns, history.fleet_ops),
        )
    ]
    shown = ordered(snap.instances, view, marks)
    grouped = view.group_by_tag and any(i.tags or i.shard for i in snap.instances)
    name_width = next((c.width for c in columns if c.key == "name"), 14)
    shards = shard_numbers(snap.instances)
    labels = node_labels(shown, shards, name_width - 3)

    def row(inst: InstanceMetrics) -> Row:
        return Row(
            inst.name,
            None,
            inst.name,
            make=lambda: instance_cells(
                inst, columns, history, health, labels.get(inst.name), marks.get(inst.name)
            ),
        )

    if not grouped:
        rows += [row(i) for i in shown]
        return rows
    groups: dict[str, list[InstanceMetrics]] = {}
    for inst in shown:
        groups.setdefault(group_of(inst), []).append(inst)
    first_seen = {tag: n for n, tag in enumerate(groups)}  # the order of each group's top member
    clusters = {i.name.split("/", 1)[0] for i in snap.instances if i.shard}
    imbalances = shard_imbalance(snap)

    def group_order(tag: str) -> tuple[int, int, bool, str, tuple[int, str]]:
        worst = min(urgency(i, marks) for i in groups[tag]) if view.worst_first else URGENCY_NONE
        if view.sort_key is not None:  # the group of the first instance in the chosen order first
            return (worst, first_seen[tag], False, "", (0, ""))
        first = groups[tag][0]
        if first.shard:  # a cluster's shards in slot order
            return (worst, 0, False, first.name.split("/", 1)[0].lower(), _slot_start(first.shard))
        return (worst, 0, tag == UNTAGGED, tag.lower(), (0, ""))

    for tag in sorted(groups, key=group_order):
        members = groups[tag]
        folded = tag in view.collapsed
        title = group_title(members[0], shards, len(clusters) > 1) if members[0].shard else tag
        label = f"{'▸' if folded else '▾'} {imbalance_badge(members[0], imbalances)}"
        label += f"{display_key(title, 40)} ({len(members):,})"
        rows.append(
            Row(
                GROUP_PREFIX + tag,
                make=lambda label=label, members=members: summary_cells(label, members, columns, (), marks),
            )
        )
        if not folded:
            rows += [row(i) for i in members]
    return rows


def imbalance_badge(inst: InstanceMetrics, imbalances: Mapping[tuple[str, str], float]) -> str:
    """`⚖1.8x ` before a cluster shard's title when its master does more than the target times
    the cluster's mean ops/s (the Hot keys tab says which keys and what to do)."""
    cluster = cluster_of(inst)
    factor = imbalances.get((cluster, inst.shard or "")) if cluster is not None else None
    return f"⚖{factor:.1f}x " if factor is not None and factor > DEFAULT_TARGET_IMBALANCE else ""


def shard_numbers(instances: Sequence[InstanceMetrics]) -> dict[tuple[str, str], int]:
    """(cluster, shard) -> 1-based shard number within its cluster, in slot order."""
    by_cluster: dict[str, set[str]] = {}
    for inst in instances:
        if inst.shard:
            by_cluster.setdefault(inst.name.split("/", 1)[0], set()).add(inst.shard)
    numbers = {}
    for cluster, found in by_cluster.items():
        for n, shard in enumerate(sorted(found, key=_slot_start), 1):
            numbers[(cluster, shard)] = n
    return numbers


def _slot_start(shard: str) -> tuple[int, str]:
    head = shard.split("-", 1)[0].split("+", 1)[0]
    return (int(head), shard) if head.isdigit() else (1 << 20, shard)


def group_title(inst: InstanceMetrics, shards: Mapping[tuple[str, str], int], many: bool) -> str:
    """A cluster shard's group: `s2 5461-10922` (the cluster's name only when there are several)."""
    cluster = inst.name.split("/", 1)[0]
    number = shards.get((cluster, inst.shard or ""))
    title = f"s{number} {inst.shard}" if number else f"shard {inst.shard}"
    return f"{cluster} {title}" if many else title


def node_labels(
    instances: Sequence[InstanceMetrics], shards: Mapping[tuple[str, str], int], width: int
) -> dict[str, str]:
    """What the name column shows for cluster nodes: the node's own address and shard number,
    with the part every node of the cluster shares elided when it does not fit in `width`
    (`…:7132 s2`), so the distinguishing part stays. Other instances show their name."""
    by_cluster: dict[str, dict[str, str]] = {}
    for inst in instances:
        label = node_label(
            inst.name, inst.address, shards.get((inst.name.split("/", 1)[0], inst.shard or ""))
        )
        if label is not None:
            by_cluster.setdefault(inst.name.split("/", 1)[0], {})[inst.name] = label
    out: dict[str, str] = {}
    for labels in by_cluster.values():
        out.update(elide_common(labels, width))
    return out


def group_of(inst: InstanceMetrics) -> str:
    """Cluster nodes group by shard (a master and its replicas); other instances by first tag."""
    if inst.shard:
        cluster = inst.name.split("/", 1)[0]
        return f"{cluster} shard {inst.shard}"
    return inst.tags[0] if inst.tags else UNTAGGED

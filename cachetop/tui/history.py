"""Bounded history of what the dashboard has seen, and the fleet roll-up.

Pure code (no Textual): the app feeds it Snapshots; charts and sparklines read it. Every
series is a deque with a maxlen, so memory stays flat however long cachetop runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cachetop.metrics import registry
from cachetop.model import InstanceMetrics, Snapshot, Status

# 10 minutes at the default 1 s interval; charts downsample this to the screen width.
HISTORY_POINTS = 600
# Above this many instances, only the overview's sparkline (ops/s, SPARK_POINTS) is kept for
# every instance, and the full series from the moment an instance's detail view is opened:
# every series for 10,000 instances would be ~2.5 GB after ten minutes.
FULL_HISTORY_LIMIT = 200
SPARK_POINTS = 64  # the widest sparkline is 40 cells
SPARK_SERIES = ("ops_per_sec",)


def history_series() -> tuple[str, ...]:
    """Series kept per instance: every charted metric of the registry (the detail view's charts)
    and the overview's sparkline."""
    charted = registry.charted()
    return (*charted, *(name for name in SPARK_SERIES if name not in charted))


class InstanceHistory:
    """Ring buffers of one instance's metrics; None marks a poll with no value (down, no reads)."""

    __slots__ = ("series", "times")

    def __init__(self, points: int = HISTORY_POINTS, series: Sequence[str] | None = None) -> None:
        if series is None:
            series = history_series()
        self.times: deque[float] = deque(maxlen=points)
        self.series: dict[str, deque[float | None]] = {name: deque(maxlen=points) for name in series}

    @property
    def full(self) -> bool:
        return set(history_series()) <= set(self.series)

    def add(self, when: float, inst: InstanceMetrics) -> None:
        self.times.append(when)
        up = inst.status == Status.UP
        for name, values in self.series.items():
            value = inst.metrics.get(name) if up else None
            values.append(None if value is None else float(value))

    def values(self, name: str) -> list[float | None]:
        return list(self.series.get(name, ()))


class History:
    """Per-instance history keyed by instance name."""

    def __init__(self, points: int = HISTORY_POINTS, full_limit: int = FULL_HISTORY_LIMIT) -> None:
        self.points = points
        self.full_limit = full_limit
        self.instances: dict[str, InstanceHistory] = {}
        self.fleet_ops: deque[float | None] = deque(maxlen=points)
        self.kept: set[str] = set()  # instances kept in full in a large fleet (their detail was opened)

    def add(self, snap: Snapshot) -> None:
        summary = fleet_summary(snap.instances)
        self.fleet_ops.append(summary.ops_per_sec if summary.up else None)
        large = len(snap.instances) > self.full_limit
        for inst in snap.instances:
            hist = self.instances.get(inst.name)
            if hist is None:
                if large and inst.name not in self.kept:
                    hist = InstanceHistory(min(self.points, SPARK_POINTS), SPARK_SERIES)
                else:
                    hist = InstanceHistory(self.points)
                self.instances[inst.name] = hist
            hist.add(snap.time, inst)

    def keep_full(self, name: str) -> None:
        """Keeps every series of `name` from now on (a large fleet keeps only the sparkline):
        the detail view asks when it opens. What was kept so far stays."""
        self.kept.add(name)
        hist = self.instances.get(name)
        if hist is not None and not hist.full:
            grown = InstanceHistory(self.points)
            grown.times.extend(hist.times)
            for series, values in hist.series.items():
                if series in grown.series:
                    grown.series[series].extend(values)
            # The other series were not kept: as many unknown points, so the charts line up.
            for series, values in grown.series.items():
                if series not in hist.series:
                    values.extend([None] * len(hist.times))
            self.instances[name] = grown

    def of(self, name: str) -> InstanceHistory:
        return self.instances.get(name) or InstanceHistory(1)


def downsample(values: Sequence[float | None], width: int, how: str = "mean") -> list[float | None]:
    """Squeezes a series into `width` points (bucket mean or max), keeping the newest at the right.

    Series shorter than width come back unchanged, so a young chart grows from the left.
    """
    if width <= 0:
        return []
    if len(values) <= width:
        return list(values)
    out: list[float | None] = []
    step = len(values) / width
    for i in range(width):
        bucket = [v for v in values[int(i * step) : int((i + 1) * step) or None] if v is not None]
        if not bucket:
            out.append(None)
        elif how == "max":
            out.append(max(bucket))
        else:
            out.append(sum(bucket) / len(bucket))
    return out


BARS = " ▁▂▃▄▅▆▇█"


def sparkline(
    values: Iterable[float | None],
    width: int,
    floor: float | None = 0.0,
    min_span: float = 0.0,
    min_share: float = 0.0,
) -> str:
    """One line of block characters for the newest `width` values, scaled from `floor` (None:
    their own min) to their own max, over at least `min_span` and at least `min_share` of their
    max: with these, a series that only moves by 1 (or by 1% of 40k) stays near the bottom
    instead of drawing a full-height surge.

    Missing values (instance down) show as a space; the line is always exactly `width` wide.
    """
    recent = list(values)[-width:]
    known = [v for v in recent if v is not None]
    low = floor if floor is not None else (min(known) if known else 0.0)
    peak = max(known) if known else 0.0
    high = max(peak, low + min_span, low + min_share * abs(peak))
    span = high - low
    chars = []
    for v in recent:
        if v is None:
            chars.append(" ")
        elif span <= 0:
            chars.append(BARS[1])  # a flat line: present, but nothing to scale against
        else:
            level = 1 + round((v - low) / span * (len(BARS) - 2))
            chars.append(BARS[max(1, min(level, len(BARS) - 1))])
    return "".join(chars).rjust(width)


@dataclass(frozen=True, slots=True)
class FleetSummary:
    total: int
    up: int
    down: int
    ops_per_sec: float
    hit_ratio: float | None  # weighted by each instance's read traffic

    @property
    def healthy(self) -> bool:
        return self.down == 0


def fleet_summary(instances: Iterable[InstanceMetrics]) -> FleetSummary:
    """Totals across instances. The hit ratio is weighted by traffic (ops/s), so a busy cache at
    50% outweighs an idle one at 100% as it does for the users behind it."""
    total = up = down = 0
    ops = 0.0
    weighted = 0.0
    weight = 0.0
    for inst in instances:
        total += 1
        if inst.status == Status.UP:
            up += 1
        elif inst.status != Status.UNKNOWN:
            down += 1
        rate = inst.metrics.get("ops_per_sec")
        if rate is not None and inst.status == Status.UP:
            ops += float(rate)
            hit = inst.metrics.get("hit_ratio")
            if hit is not None and rate > 0:
                weighted += float(hit) * float(rate)
                weight += float(rate)
    return FleetSummary(total, up, down, ops, weighted / weight if weight > 0 else None)

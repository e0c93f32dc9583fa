"""What a metric declares about itself: MetricInfo and the view specs it carries.

One MetricInfo holds everything every view needs (metrics/registry.py keeps them): the name and
unit, the help text, which direction is healthy, the default warn/bad levels, how a value is
written, the overview and snapshot-table column, the chart it is drawn in, the alert preset rule
it takes part in, and how it is computed from the window. Pure data, no Textual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Literal, Protocol

from cachetop.metrics.inputs import MetricInputs
from cachetop.util import format as fmt

Better = Literal["higher", "lower", "neither"]
Formatter = Callable[[float | None], str]
Compute = Callable[[MetricInputs], "float | int | None"]

# Precision of each unit for people: 90.0%, 0.04 ms, 1234.5 ops/s; counts and bytes are whole.
UNIT_DECIMALS = {"%": 1, "ms": 2, "ops/s": 1, "keys/s": 1}
UNIT_FORMAT: Mapping[str, Formatter] = {
    "%": fmt.pct,
    "ms": fmt.ms,
    "ops/s": fmt.rate,
    "keys/s": fmt.rate,
    "bytes": fmt.size,
}


class InstanceView(Protocol):
    """What a column's mark reads of an instance (model.InstanceMetrics has it)."""

    @property
    def memory_max_from(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Levels:
    """Default health levels: good on the healthy side of `warn_at`, warn up to `bad_at`, bad
    beyond (the healthy side is the metric's `better`). Alert rules that select an instance
    replace them for it."""

    warn_at: float
    bad_at: float


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """The metric's column in the overview and the `snapshot` table (header: MetricInfo.short)."""

    key: str  # the column's id: what `s` sorts by
    width: int  # cells in the overview
    keep: int  # on a narrow screen, lower survives longer (see tui/columns.layout)
    narrow: Formatter | None = None  # the overview's fixed-width cell, when not MetricInfo.format
    # Text after the value, from the instance: "*" when memory is against the host's memory.
    mark: Callable[[InstanceView], str] | None = None


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """The metric as one series of a chart in the detail view. Metrics naming the same chart
    share it (charts in registry order, series by `rank`); a chart is titled by CHARTS, else by
    the label of its first metric, and its axis written with that metric's format."""

    chart: str  # the chart's key; its widget id is chart-<key>
    label: str  # the series' legend
    colour: str = "primary"  # a theme colour: primary, success, warning, error, accent
    rank: int = 0  # order within the chart: the first is drawn as bars, the rest as markers
    only_when_present: bool = False  # left out while the instance has no value for it


@dataclass(frozen=True, slots=True)
class ChartInfo:
    """Title and axis of a chart several metrics share."""

    title: str
    fixed_max: float | None = None
    zoom: bool = False  # the axis starts near the lowest value


@dataclass(frozen=True, slots=True)
class PresetRule:
    """How the metric takes part in the alert presets (alerts/presets.py): a preset gives the
    threshold; the comparison follows `better` (< for higher-is-better, > for lower)."""

    name: str
    severity: str
    clear: Callable[[float], float]  # clear_threshold from threshold (hysteresis)


@dataclass(frozen=True, slots=True)
class MetricInfo:
    name: str
    unit: str
    help: str
    # Which direction is healthy: health colours, sort order and preset comparisons read it.
    better: Better = "neither"
    # Prometheus exposition: the name without prefix, and the factor from our unit to the base unit.
    prom_name: str = ""
    prom_scale: float = 1.0
    _: KW_ONLY
    label: str = ""  # for people ("hit ratio"); default: the name with spaces
    short: str = ""  # column header and summary label ("hit"); default: the label
    format: Formatter | None = None  # default: by unit (UNIT_FORMAT), else a whole count
    levels: Levels | None = None
    column: ColumnSpec | None = None
    chart: ChartSpec | None = None
    summary: bool | Formatter = False  # in the detail view's summary line (a Formatter overrides)
    preset: PresetRule | None = None
    core: bool = False  # in every `snapshot --json` instance first, in registry order, even when null
    # How it is computed from the window; None: another part contributes it by name
    # (hot keys' stampede_events, the keyspace analysis...), or it is absent.
    compute: Compute | None = None
    # Rules act on it only once this many probes back it (latency_probes): a p99 needs 100.
    min_probes: int = 0

    @property
    def decimals(self) -> int:
        """Digits after the point when a person reads a value (alert messages, the alerts view)."""
        return UNIT_DECIMALS.get(self.unit, 0)

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")

    @property
    def header(self) -> str:
        return self.short or self.title

    def text(self, value: float | int | None) -> str:
        """A value as the snapshot table and the detail view write it ("–" for no value)."""
        render = self.format or UNIT_FORMAT.get(self.unit, fmt.count)
        return render(None if value is None else float(value))

    def level(self, value: float) -> str | None:
        """good / warn / bad by the default levels; None without levels or direction."""
        if self.levels is None or self.better == "neither":
            return None
        warn, bad = self.levels.warn_at, self.levels.bad_at
        if self.better == "higher":
            return "good" if value >= warn else "warn" if value >= bad else "bad"
        return "good" if value < warn else "warn" if value < bad else "bad"

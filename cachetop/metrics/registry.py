"""METRICS: the one registry of metrics, which every view derives from.

The overview and `snapshot` columns, health colours, the history the charts draw, the detail
view's summary and charts, alert rule validation and presets, `snapshot --json` and Prometheus
all read it; none lists metric names of its own. A metric is added by one MetricInfo (in
metrics/builtin.py, or `register()` from its own module) plus its computation: `compute=` a
function of the window (metrics/inputs.MetricInputs), or a value another part contributes under
the metric's name.

    register(MetricInfo("evicted_bytes_per_sec", "bytes", "Bytes evicted per second.", "lower",
                        label="evicted bytes/s", short="evict B", column=ColumnSpec("evictb", 7, 12),
                        compute=lambda m: m.rate("evicted_bytes")))
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from cachetop.metrics.builtin import BUILTIN, CHARTS
from cachetop.metrics.info import UNIT_FORMAT, ChartInfo, Compute, Formatter, MetricInfo
from cachetop.metrics.inputs import MetricInputs
from cachetop.util import format as fmt

_registry: dict[str, MetricInfo] = {info.name: info for info in BUILTIN}
_builtin = frozenset(_registry)
_version = 0

METRICS: Mapping[str, MetricInfo] = MappingProxyType(_registry)

# The keys every `snapshot --json` instance carries, in this order, even when null.
CORE_METRICS: tuple[str, ...] = tuple(info.name for info in BUILTIN if info.core)


class RegistryError(ValueError):
    pass


def register(info: MetricInfo) -> MetricInfo:
    """Adds a metric after the built-in ones. Its name, Prometheus name and column key must be new."""
    global _version
    if info.name in _registry:
        raise RegistryError(f"metric {info.name!r} is already registered")
    prom = info.prom_name or info.name
    if any((other.prom_name or other.name) == prom for other in _registry.values()):
        raise RegistryError(f"metric {info.name!r}: Prometheus name {prom!r} is taken")
    if info.column is not None and any(
        other.column is not None and other.column.key == info.column.key for other in _registry.values()
    ):
        raise RegistryError(f"metric {info.name!r}: column key {info.column.key!r} is taken")
    _registry[info.name] = info
    _version += 1
    return info


def unregister(name: str) -> None:
    """Removes a metric registered with register() (tests; a plugin being unloaded)."""
    global _version
    if name in _builtin:
        raise RegistryError(f"metric {name!r} is built in")
    if _registry.pop(name, None) is not None:
        _version += 1


def version() -> int:
    """Changes whenever the registry does: views that derive tables from it cache on it."""
    return _version


_computed: tuple[int, tuple[tuple[str, Compute], ...]] | None = None


def compute_metrics(inputs: MetricInputs) -> dict[str, float | int | None]:
    """Every registered metric that is computed from the window, by its name."""
    global _computed
    if _computed is None or _computed[0] != _version:
        _computed = (_version, tuple((n, i.compute) for n, i in _registry.items() if i.compute is not None))
    return {name: compute(inputs) for name, compute in _computed[1]}


def chart_info(key: str) -> ChartInfo:
    """The title and axis of chart `key`: CHARTS, else its first metric's label."""
    if key in CHARTS:
        return CHARTS[key]
    first = next((i for i in _registry.values() if i.chart is not None and i.chart.chart == key), None)
    return ChartInfo(first.title if first is not None else key)


def charts() -> list[tuple[str, ChartInfo, Formatter, list[MetricInfo]]]:
    """(key, info, axis format, metrics in series order) of each chart, in registry order."""
    grouped: dict[str, list[MetricInfo]] = {}
    for info in _registry.values():
        if info.chart is not None:
            grouped.setdefault(info.chart.chart, []).append(info)
    out = []
    for key, members in grouped.items():
        first = members[0]
        axis = first.format or UNIT_FORMAT.get(first.unit, fmt.count)
        members = sorted(members, key=lambda i: i.chart.rank if i.chart is not None else 0)
        out.append((key, chart_info(key), axis, members))
    return out


def charted() -> tuple[str, ...]:
    """Names of the metrics some chart draws: the history keeps these."""
    return tuple(name for name, info in _registry.items() if info.chart is not None)


def with_columns() -> tuple[MetricInfo, ...]:
    """The metrics that have a column in the overview and the `snapshot` table, in order."""
    return tuple(info for info in _registry.values() if info.column is not None)


def in_summary() -> tuple[MetricInfo, ...]:
    return tuple(info for info in _registry.values() if info.summary)

"""The detail view's charts and summary line, derived from the metric registry.

Each chart is one ChartSpec key of the registry (hit, ops, latency, memory, evictions, and any a
new metric declares), in registry order; its series are the metrics that name it, by rank. The
summary line shows the metrics that declare `summary`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cachetop.metrics import registry
from cachetop.metrics.info import Formatter, MetricInfo
from cachetop.tui.widgets.chart import Chart, Series

CHART_ID_PREFIX = "chart-"


def chart_widgets() -> list[Chart]:
    """One empty Chart per registered chart, with id chart-<key>."""
    return [
        Chart(info.title, axis, fixed_max=info.fixed_max, zoom=info.zoom, id=CHART_ID_PREFIX + key)
        for key, info, axis, _ in registry.charts()
    ]


def chart_series(values: Callable[[str], Sequence[float | None]]) -> dict[str, list[Series]]:
    """chart id -> its series, from an instance's history (`values(metric)`). A series that
    declares only_when_present is left out while it holds no value."""
    out: dict[str, list[Series]] = {}
    for key, _, _, members in registry.charts():
        series = []
        for info in members:
            spec = info.chart
            assert spec is not None
            points = values(info.name)
            if spec.only_when_present and all(v is None for v in points):
                continue
            series.append(Series(spec.label, points, spec.colour))
        out[CHART_ID_PREFIX + key] = series
    return out


def summary_metrics() -> list[tuple[str, str, Formatter]]:
    """(label, metric, formatter) of the summary line under the detail view's header."""
    return [(info.header, info.name, _summary_format(info)) for info in registry.in_summary()]


def _summary_format(info: MetricInfo) -> Formatter:
    return info.summary if callable(info.summary) else info.text

"""How each built-in metric is computed from its window: the definitions users check us against.

All rates and ratios are over the sliding window, from counter deltas without cachetop's own
share. Backends normalise their fields into these counter names: hits, misses, commands, errors,
evictions, expired, cpu_ms, plus own_hits, own_misses, own_commands and own_errors; and gauges:
memory_used, memory_max, connections, blocked_clients, rss, foreign_monitor_omem. Each function
takes the MetricInputs Protocol and returns the value or None (undefined over the window).
"""

from __future__ import annotations

from collections.abc import Callable

from cachetop.metrics.inputs import MetricInputs


def _ratio_pct(part: int | None, whole: int | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return 100.0 * part / whole


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def hit_ratio(m: MetricInputs) -> float | None:
    hits = m.net_delta("hits", "own_hits")
    misses = m.net_delta("misses", "own_misses")
    reads = hits + misses if hits is not None and misses is not None else None
    return _ratio_pct(hits, reads)


def ops_per_sec(m: MetricInputs) -> float | None:
    return m.rate("commands", own="own_commands")


def error_rate(m: MetricInputs) -> float | None:
    """Failed polls count as failed requests among all requests, cachetop's polls included, so
    one timeout on a quiet instance is 1 in 10, not 100%."""
    commands = m.net_delta("commands", "own_commands")
    errors = m.net_delta("errors", "own_errors")
    if commands is None or errors is None:
        return None
    requests = commands + m.polls
    return 100.0 * (errors + m.failed_polls) / requests if requests > 0 else 0.0


def memory_used_bytes(m: MetricInputs) -> int | None:
    return _whole(m.gauge("memory_used"))


def memory_max_bytes(m: MetricInputs) -> int | None:
    limit = m.gauge("memory_max")
    return int(limit) if limit else None


def memory_used_pct(m: MetricInputs) -> float | None:
    used, limit = m.gauge("memory_used"), m.gauge("memory_max")
    return 100.0 * used / limit if used is not None and limit else None


def cpu_pct(m: MetricInputs) -> float | None:
    cpu_ms, span = m.delta("cpu_ms"), m.span
    return 100.0 * cpu_ms / 1000.0 / span if cpu_ms is not None and span > 0 else None


def counter_rate(counter: str) -> Callable[[MetricInputs], float | None]:
    """Per second over the window, of a counter cachetop never moves."""
    return lambda m: m.rate(counter)


def gauge_whole(gauge: str) -> Callable[[MetricInputs], int | None]:
    """The newest reading of a gauge, as a whole number."""
    return lambda m: _whole(m.gauge(gauge))


def probe_ms(q: float) -> Callable[[MetricInputs], float | None]:
    """A percentile of cachetop's probe round trips."""
    return lambda m: m.probe_quantile(q)


def probe_count(m: MetricInputs) -> int:
    return m.probe_count


def server_ms(q: float) -> Callable[[MetricInputs], float | None]:
    """A percentile of the server's own execution time of data commands."""
    return lambda m: m.server_quantile(q)

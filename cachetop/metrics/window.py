"""Sliding windows over cumulative counters, and the inputs the registry's formulas read.

A window holds the samples of the last `window_s` seconds (plus the one just before, so the
span covers the whole window). Every rate and ratio is a delta between the newest and oldest
sample. A counter that goes down, or a new server epoch (restart, CONFIG RESETSTAT, stats
reset), drops the history: the next numbers come from a fresh window, never a negative rate.
Where windows sit in the pipeline, and how cachetop's own traffic is taken out of them:
docs/architecture.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping

from cachetop.metrics.latency import QuantileWindow, histogram_delta, histogram_quantile, histogram_sum
from cachetop.metrics.registry import compute_metrics
from cachetop.model import CommandStat, Sample

# Commands that are cachetop's own or administrative, left out of the server-side latency
# aggregate so an idle server reports the latency of its data commands, not of our polling.
ADMIN_COMMANDS = frozenset(
    {
        "ping",
        "info",
        "latency|histogram",
        "client|setname",
        "client|list",
        "client|info",
        "auth",
        "select",
        "hello",
        "command",
        "command|docs",
        "config|get",
        "slowlog|get",
        "monitor",
        "quit",
    }
)


class CounterWindow:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.samples: deque[Sample] = deque()
        self.resets = 0  # how many times history was dropped; the TUI shows it
        self.failed_polls: deque[float] = deque()

    def add(self, sample: Sample) -> bool:
        """Adds a sample; returns True when it started a new window (counter reset or a gap)."""
        reset = False
        if self.samples:
            last = self.samples[-1]
            if sample.epoch != last.epoch or _went_down(last.counters, sample.counters):
                self.samples.clear()
                self.resets += 1
                reset = True
            elif sample.time - last.time > 2 * self.window_s:
                # After a pause or an outage, a delta over the whole gap would be shown as the
                # rate of the last `window` seconds: start afresh instead. (Twice the window,
                # because `snapshot` polls exactly one window apart, give or take jitter.)
                self.samples.clear()
                reset = True
        self.samples.append(sample)
        self._trim(sample.time)
        return reset

    def record_failure(self, now: float) -> None:
        self.failed_polls.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        cutoff = now - self.window_s
        # Keep one sample at or before the cutoff so the span covers the full window.
        while len(self.samples) >= 2 and self.samples[1].time <= cutoff:
            self.samples.popleft()
        while self.failed_polls and self.failed_polls[0] <= cutoff:
            self.failed_polls.popleft()

    @property
    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    @property
    def span(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        return self.samples[-1].time - self.samples[0].time

    def delta(self, name: str) -> int | None:
        if len(self.samples) < 2:
            return None
        new = self.samples[-1].counters.get(name)
        old = self.samples[0].counters.get(name)
        if new is None or old is None:
            return None
        return new - old

    def net_delta(self, name: str, own: str) -> int | None:
        """Δname minus Δown: the server's counter without cachetop's own share of it."""
        delta = self.delta(name)
        if delta is None:
            return None
        return max(0, delta - (self.delta(own) or 0))

    @property
    def polls(self) -> int:
        """Poll attempts inside the window: the intervals between samples, plus failures."""
        return max(0, len(self.samples) - 1) + len(self.failed_polls)

    def rate(self, name: str, own: str | None = None) -> float | None:
        delta = self.net_delta(name, own) if own else self.delta(name)
        span = self.span
        if delta is None or span <= 0:
            return None
        return delta / span


def _went_down(old: Mapping[str, int], new: Mapping[str, int]) -> bool:
    return any(key in old and value < old[key] for key, value in new.items())


class WindowInputs:
    """MetricInputs (metrics/inputs.py) over one instance's windows at `now`: what the registry's
    formulas read. The probe and server-side percentiles are merged once, on first use."""

    PROBE_QUANTILES = (0.50, 0.95, 0.99)  # merged together: the registry's probe percentiles

    def __init__(
        self,
        window: CounterWindow,
        latency: QuantileWindow | None = None,
        now: float = 0.0,
        min_probes: int = 0,
    ) -> None:
        self.window = window
        self.latency = latency
        self.now = now
        self.min_probes = min_probes
        self.span = window.span  # read by several formulas; a property of the window computes it
        latest = window.latest
        self._gauges: Mapping[str, float] = latest.gauges if latest is not None else {}
        self._probes: tuple[dict[float, float | None], int] | None = None
        self._server: dict[int, int] | None = None

    @property
    def polls(self) -> int:
        return self.window.polls

    @property
    def failed_polls(self) -> int:
        return len(self.window.failed_polls)

    def delta(self, counter: str) -> int | None:
        return self.window.delta(counter)

    def net_delta(self, counter: str, own: str) -> int | None:
        return self.window.net_delta(counter, own)

    def rate(self, counter: str, own: str | None = None) -> float | None:
        return self.window.rate(counter, own)

    def gauge(self, name: str) -> float | None:
        return self._gauges.get(name)

    def _probe_quantiles(self, extra: float | None = None) -> tuple[dict[float, float | None], int]:
        if self.latency is None:
            return {}, 0
        if self._probes is None or (extra is not None and extra not in self._probes[0]):
            wanted = set(self.PROBE_QUANTILES) | set(self._probes[0] if self._probes is not None else ())
            qs = tuple(sorted(wanted | ({extra} if extra is not None else set())))
            values, count = self.latency.quantiles_and_count(self.now, qs, self.min_probes)
            self._probes = dict(zip(qs, values, strict=True)), count
        return self._probes

    def probe_quantile(self, q: float) -> float | None:
        probes = self._probes
        if probes is not None and q in probes[0]:
            return probes[0][q]
        return self._probe_quantiles(q)[0].get(q)

    @property
    def probe_count(self) -> int:
        probes = self._probes
        return probes[1] if probes is not None else self._probe_quantiles()[1]

    def server_quantile(self, q: float) -> float | None:
        if self._server is None:
            self._server = server_histogram(self.window)
        value = histogram_quantile(self._server, q)
        return None if value is None else value * 0.001  # µs -> ms


def windowed_metrics(
    window: CounterWindow, latency: QuantileWindow | None = None, now: float = 0.0, min_probes: int = 0
) -> dict[str, float | int | None]:
    """Every registered metric computed from the window (registry.compute_metrics), by name;
    the probe percentiles too when the probe latency window is given."""
    if window.latest is None:
        return {}
    return compute_metrics(WindowInputs(window, latency, now, min_probes))


def _ends_with(window: CounterWindow, has: Callable[[Sample], bool]) -> tuple[Sample, Sample] | None:
    """The oldest and newest samples that carry a detail (per-command figures come with one
    poll in several), or None when fewer than two do."""
    carrying = [s for s in window.samples if has(s)]
    if len(carrying) < 2 or carrying[-1].time <= carrying[0].time:
        return None
    return carrying[0], carrying[-1]


def _mostly_ours(cmd: str, first: Sample, last: Sample) -> bool:
    """A histogram cannot be told which calls were ours: leave a command out of the server-side
    latency when cachetop made at least half of its calls in the window (e.g. the hot-key
    sampler's OBJECT FREQ and MEMORY USAGE on a quiet server)."""
    calls = last.commandstats.get(cmd, (0, 0, 0))[0] - first.commandstats.get(cmd, (0, 0, 0))[0]
    ours = last.own_commandstats.get(cmd, 0) - first.own_commandstats.get(cmd, 0)
    return ours > 0 and ours * 2 >= calls


def server_histogram(window: CounterWindow) -> dict[int, int]:
    """The cumulative LATENCY HISTOGRAM of data commands over the window, in µs buckets; empty
    when fewer than two samples carry histograms."""
    ends = _ends_with(window, lambda s: bool(s.latency_histograms))
    if ends is None:
        return {}
    first, last = ends
    new, old = last.latency_histograms, first.latency_histograms
    deltas = [
        histogram_delta(dict(hist), dict(old.get(cmd, {})))
        for cmd, hist in new.items()
        if cmd not in ADMIN_COMMANDS and not _mostly_ours(cmd, first, last)
    ]
    return histogram_sum(deltas)


def command_stats(window: CounterWindow) -> dict[str, CommandStat]:
    """Per-command calls/s, µs per call and failures/s over the window, with histogram percentiles."""
    ends = _ends_with(window, lambda s: bool(s.commandstats))
    if ends is None:
        return {}
    old, new = ends
    span = new.time - old.time
    out: dict[str, CommandStat] = {}
    for cmd, (calls, usec, failed) in new.commandstats.items():
        old_calls, old_usec, old_failed = old.commandstats.get(cmd, (0, 0, 0))
        own = new.own_commandstats.get(cmd, 0) - old.own_commandstats.get(cmd, 0)
        d_calls = calls - old_calls - own
        if d_calls <= 0:
            continue
        hist = new.latency_histograms.get(cmd)
        p50 = p95 = p99 = None
        if hist:
            delta = histogram_delta(dict(hist), dict(old.latency_histograms.get(cmd, {})))
            p50, p95, p99 = (histogram_quantile(delta, q) for q in (0.5, 0.95, 0.99))
        out[cmd] = CommandStat(
            calls_per_sec=d_calls / span,
            usec_per_call=(usec - old_usec) / d_calls,
            failed_per_sec=max(0, failed - old_failed) / span,
            p50_ms=p50 / 1000 if p50 is not None else None,
            p95_ms=p95 / 1000 if p95 is not None else None,
            p99_ms=p99 / 1000 if p99 is not None else None,
        )
    return out

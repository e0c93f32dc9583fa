"""What a metric's computation reads: one instance's window at one moment, as a Protocol.

The registry's formulas (metrics/formulas.py) depend on this Protocol only, so they import
nothing from the pipeline; metrics/window.py's WindowInputs implements it over a CounterWindow
and the probe latency window. Pure code: no sockets, no clock of its own.
"""

from __future__ import annotations

from typing import Protocol


class MetricInputs(Protocol):
    """One instance's window, as every formula sees it."""

    @property
    def span(self) -> float:
        """Seconds between the oldest and the newest sample of the window (0 with fewer than two)."""
        ...

    @property
    def polls(self) -> int:
        """Poll attempts inside the window: the intervals between samples, plus failures."""
        ...

    @property
    def failed_polls(self) -> int:
        """Polls that failed inside the window."""
        ...

    def delta(self, counter: str) -> int | None:
        """Newest minus oldest value of a cumulative counter; None without two samples."""
        ...

    def net_delta(self, counter: str, own: str) -> int | None:
        """delta(counter) without cachetop's own share (the `own` counter's delta)."""
        ...

    def rate(self, counter: str, own: str | None = None) -> float | None:
        """(net) delta per second over the window."""
        ...

    def gauge(self, name: str) -> float | None:
        """A point-in-time reading of the newest sample; None when the backend has none."""
        ...

    def probe_quantile(self, q: float) -> float | None:
        """The q-quantile of cachetop's probe round trips in ms (metrics/latency.py)."""
        ...

    @property
    def probe_count(self) -> int:
        """How many probes the probe quantiles rest on."""
        ...

    def server_quantile(self, q: float) -> float | None:
        """The q-quantile of the server's own command execution time in ms (LATENCY HISTOGRAM)."""
        ...

"""Per-instance figures measured beside the Monitor, contributed through one declared interface.

Hot keys, stampedes, cluster hot slots and the analyses measure things about an instance that its
poll does not. They do not write into the Monitor's pollers: each registers a FigureContributor
with `Monitor.add_figures(contributor)`, and the Monitor asks every contributor for an instance's
figures when it builds that instance's metrics for a Snapshot (once per snapshot, on the event
loop, so a figure is never a snapshot stale). Keep `figures()` cheap: a fleet of 10,000 asks it
10,000 times a second.

    class ExpiryCliffs:
        def figures(self, instance: str) -> Figures | None:
            found = self.latest.get(instance)
            return None if found is None else Figures(metrics={"expiry_cliff_keys": found})

    remove = monitor.add_figures(ExpiryCliffs())   # remove() unregisters it
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cachetop.util.aio import Callbacks

MetricValue = float | int | None


@dataclass(frozen=True, slots=True)
class Figures:
    """What one contributor adds to one instance's InstanceMetrics.

    `metrics` are values under names from the metric registry (cachetop.model.METRICS); they are
    shown only while the instance is up, like every windowed metric. `extras` are richer objects
    (a HotKeysView, hot slots) that views look up by key in InstanceMetrics.extras."""

    metrics: Mapping[str, MetricValue] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)


NO_FIGURES = Figures()


@runtime_checkable
class FigureContributor(Protocol):
    def figures(self, instance: str) -> Figures | None:
        """Figures for the instance named `instance` (InstanceConfig.name); None when none."""
        ...


class FigureBoard:
    """The contributors one Monitor asks; merges their answers (a later one wins a shared key)."""

    def __init__(self) -> None:
        self._contributors: Callbacks[FigureContributor] = Callbacks()
        self._count = 0

    def add(self, contributor: FigureContributor) -> Callable[[], None]:
        remove_item = self._contributors.add(contributor)
        self._count += 1
        removed = False

        def remove() -> None:
            nonlocal removed
            if not removed:
                removed = True
                self._count -= 1
                remove_item()

        return remove

    def collect(self, instance: str, on_error: Callable[[FigureContributor], None]) -> Figures:
        if not self._count:
            return NO_FIGURES
        answers = []
        for contributor in self._contributors:
            try:
                found = contributor.figures(instance)
            except Exception:  # one failing contributor must not cost the snapshot
                on_error(contributor)
                continue
            if found is not None:
                answers.append(found)
        if len(answers) < 2:  # the common case: handed on as it is, no merge
            return answers[0] if answers else NO_FIGURES
        metrics: dict[str, MetricValue] = {}
        extras: dict[str, Any] = {}
        for found in answers:
            metrics.update(found.metrics)
            extras.update(found.extras)
        return Figures(metrics, extras)

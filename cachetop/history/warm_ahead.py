"""Warming ahead of demand: the keys predicted for the coming buckets, through a warmer plugin.

cachetop never invents a value: `PredictedWarmer` plans the predicted keys and asks the user's
warmer plugin (the loader) for each one's value; a key the loader has no value for is skipped
(counted as `empty`). Locks, the rate budget, the read-only refusal and the audit line are the
ones every warm goes through (actions/warm.py, actions/audit.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cachetop.analysis.predict import Prediction, Top, predict
from cachetop.history.bucket import BucketRecord, bucket_index
from cachetop.history.config import HistorySettings
from cachetop.history.store import HistoryStore
from cachetop.metrics.prefix import PrefixRoller
from cachetop.plugins import Warmer, WarmItem

SEASONS_KEPT = 4  # seasons of history the predictors read (the seasonal one weighs 4 back at most)


class PredictedWarmer:
    """Plans the predicted keys; values come from the loader (the user's warmer plugin)."""

    name: ClassVar[str] = "predicted"
    description: ClassVar[str] = "keys predicted hot for the coming bucket(s), values from a loader"

    def __init__(self, keys: Sequence[bytes], loader: Warmer, ttl: float | None) -> None:
        self.keys = list(dict.fromkeys(keys))
        self.loader = loader
        self.ttl = ttl
        self.total = len(self.keys)

    def plan(self) -> Iterator[WarmItem]:
        return (WarmItem(k, self.ttl) for k in self.keys)

    def fetch(self, item: WarmItem) -> bytes | str | None:
        return self.loader.fetch(item)


@dataclass(frozen=True, slots=True)
class Plan:
    """What warm --predict will warm: per target bucket, the prediction and the keys taken."""

    targets: tuple[int, ...]
    keys: tuple[bytes, ...]
    predictions: tuple[Prediction, ...]
    buckets_known: int  # closed buckets the prediction rests on


def history_window(
    store: HistoryStore, instance: str, settings: HistorySettings, now: float
) -> dict[int, BucketRecord]:
    since = bucket_index(now, settings.bucket) - SEASONS_KEPT * settings.season - 1
    return store.buckets(instance, settings.bucket, since=since)


def recent_precision(store: HistoryStore, instance: str, settings: HistorySettings) -> dict[str, list[float]]:
    scored = store.precision(instance, settings.bucket, last=settings.season)
    return {name: [v for _, v in values] for name, values in scored.items()}


def plan_ahead(
    store: HistoryStore,
    instance: str,
    settings: HistorySettings,
    *,
    separators: str = ":",
    horizon: float | None = None,
    top: int = 100,
    now: float | None = None,
    current: Top | BucketRecord | None = None,
    seen: float = 1.0,
) -> Plan:
    """The keys to warm for the buckets that start within `horizon` (default: the next one)."""
    now = time.time() if now is None else now
    bucket = settings.bucket
    this = bucket_index(now, bucket)
    last = bucket_index(now + (horizon if horizon is not None else 0.0), bucket)
    targets = tuple(range(this + 1, max(this + 1, last) + 1))
    history = history_window(store, instance, settings, now)
    if current is None and history:
        current = history[max(history)]
    roller = PrefixRoller(separators)
    recent = recent_precision(store, instance, settings)
    predictions = tuple(
        predict(history, current, t, settings.season, rollup=roller.rollup, recent=recent, seen=seen)
        for t in targets
    )
    keys: list[bytes] = []
    for p in predictions:
        keys.extend(p.top("combined", top))
    return Plan(targets, tuple(dict.fromkeys(keys)), predictions, len(history))


def default_ttl(settings: HistorySettings, horizon: float | None) -> float:
    """A warmed key outlives the bucket it was warmed for, then goes: warming must not pin the
    morning's keys in memory all night."""
    return (horizon or 0.0) + 2 * settings.bucket


def make_loader(
    config: Any, strategy: str, options: dict[str, str], extra_paths: Sequence[Path] = ()
) -> Warmer:
    from cachetop.actions.warm_sources import create_warmer
    from cachetop.plugins import discover, plugin_paths_of

    registry = discover(plugin_paths_of(config) + list(extra_paths))
    return create_warmer(registry, strategy, options)

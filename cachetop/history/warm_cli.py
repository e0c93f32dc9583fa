"""`cachetop warm --predict`: the predicted keys of the coming bucket(s) as a warming strategy."""

from __future__ import annotations

from typing import Any

from cachetop.engine.config import Config, InstanceConfig
from cachetop.engine.configfile import ConfigError
from cachetop.history.config import history_settings, key_separators
from cachetop.history.store import HistoryStore
from cachetop.history.warm_ahead import PredictedWarmer, default_ttl, plan_ahead
from cachetop.plugins import Warmer
from cachetop.util.durations import format_seconds
from cachetop.util.safe_text import display_key


def predicted_warmer(
    config: Config, inst: InstanceConfig, loader: Warmer, horizon: float | None, ttl: float | None, top: int
) -> tuple[PredictedWarmer, dict[str, Any]]:
    """The warmer for --predict and the audit fields that say what was predicted."""
    settings = history_settings(config)
    store = HistoryStore(config.settings.state_dir, settings, writable=False)
    try:
        separators = key_separators(config)
        plan = plan_ahead(store, inst.name, settings, separators=separators, horizon=horizon, top=top)
    finally:
        store.close()
    if not plan.buckets_known:
        raise ConfigError(
            f"warm --predict: no history of {display_key(inst.name, 60)} with"
            f" {format_seconds(settings.bucket)} buckets in {store.path} yet"
            " (the daemon or the dashboard keeps it while it samples hot keys;"
            " see docs/trends.md)"
        )
    warmer = PredictedWarmer(plan.keys, loader, ttl if ttl is not None else default_ttl(settings, horizon))
    fields = {
        "predict": True,
        "buckets": list(plan.targets),
        "history_buckets": plan.buckets_known,
        "horizon_s": horizon,
    }
    return warmer, fields

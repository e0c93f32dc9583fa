"""Helpers for tests that run the real Monitor against real servers."""

from __future__ import annotations

from dataclasses import replace

from cachetop.config import Config, config_from_targets


def fast_config(*urls: str, interval: float = 0.2, window: float = 2.0, timeout: float = 1.0) -> Config:
    config = config_from_targets(list(urls))
    return replace(
        config, settings=replace(config.settings, interval=interval, window=window, timeout=timeout)
    )

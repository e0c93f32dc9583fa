"""Helpers for tests that run the real Monitor against real servers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cachetop.engine.config import Config, config_from_targets


def one_instance_toml(tmp_path: Path, url: str, *, window: str = "1s") -> str:
    """The head of a config file for tests that run cachetop on one instance as a command: fast
    polls, state in tmp_path, no instance_down alert. Rules and channels follow it."""
    return f"""
[settings]
interval = "200ms"
window = "{window}"
state_dir = "{tmp_path / "state"}"

[[instance]]
name = "cache-1"
url = "{url}"

[alerts]
instance_down = false
"""


def fast_config(*urls: str, interval: float = 0.2, window: float = 2.0, timeout: float = 1.0) -> Config:
    config = config_from_targets(list(urls))
    return replace(
        config, settings=replace(config.settings, interval=interval, window=window, timeout=timeout)
    )

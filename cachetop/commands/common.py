"""What several commands share: turning targets, --config and duration flags into a Config."""

from __future__ import annotations

import argparse
from dataclasses import replace

from cachetop.config import Config, resolve_config
from cachetop.configfile import ConfigError, parse_duration


def flag_duration(value: str | None, flag: str) -> float | None:
    """A positive duration from a command-line flag; a mistake is a ConfigError naming the flag."""
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from None
    if seconds <= 0:
        raise ConfigError(f"{flag}: must be positive, not {value!r}")
    return seconds


def config_from_args(args: argparse.Namespace) -> Config:
    """Targets and --config as the CLI rule says, with --interval/--window/--timeout on top."""
    config = resolve_config(getattr(args, "targets", None) or [], getattr(args, "config", None))
    settings = config.settings
    interval = flag_duration(getattr(args, "interval", None), "--interval")
    window = flag_duration(getattr(args, "window", None), "--window")
    timeout = flag_duration(getattr(args, "timeout", None), "--timeout")
    if interval is not None:
        settings = replace(settings, interval=interval)
    if window is not None:
        settings = replace(settings, window=window)
    if timeout is not None:
        settings = replace(settings, timeout=timeout)
    if settings.window < settings.interval:
        settings = replace(settings, window=settings.interval)
    return replace(config, settings=settings)

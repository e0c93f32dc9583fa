"""What several commands share: turning targets, --config and duration flags into a Config."""

from __future__ import annotations

import argparse
from dataclasses import replace

from cachetop.engine.config import Config, apply_profile, resolve_config, window_problem
from cachetop.engine.configfile import ConfigError, bounded_duration


def flag_duration(value: str | None, flag: str) -> float | None:
    """A duration from a command-line flag, within the bounds the config key of the same name has
    (--interval as interval = ...); a mistake is a ConfigError naming the flag and the bounds."""
    if value is None:
        return None
    try:
        return bounded_duration(value, flag)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


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
    problem = window_problem(settings)
    if problem:  # the file's rule and message; the flag that broke it (or the file's window) named
        raise ConfigError(f"{'--window' if window is not None else '--interval'}: {problem}")
    config = replace(config, settings=settings)
    return apply_profile(config, "light") if getattr(args, "light", False) else config

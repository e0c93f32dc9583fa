"""Durations in config files and on the command line: parsing ("500ms", "1h30m") and bounds.

Every duration setting is checked against the bounds DURATION_BOUNDS gives for its name, so a
typo cannot flood the server and mixed-up units are caught; the ValueError is the message.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """'500ms', '2s', '5m', '1h', '1h30m' or a number of seconds -> seconds (finite: "nan",
    "inf" and 1e400 are refused here, so no caller can sleep for NaN seconds)."""
    seconds = _parse_duration(value)
    if not math.isfinite(seconds):
        raise ValueError(f'{_shown_value(value)} is not a finite duration (allowed: "2s", "5m", "1h"...)')
    return seconds


def _parse_duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError('expected a duration like "500ms", "2s", "5m", "1h" or a number of seconds')
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos, total = 0, 0.0
        for m in _DURATION_PART.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if text and pos == len(text):
            return total
        try:
            return float(text)
        except ValueError:
            pass
    raise ValueError(
        f'{value!r} is not a duration (allowed: "500ms", "2s", "5m", "1h", or a number of seconds)'
    )


def _shown_value(value: Any) -> str:
    """A config value as an error message quotes it: 1e-09, "nan", escaped and bounded."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        from cachetop.util.safe_text import display_key

        return f'"{display_key(value, 40)}"'
    return display_key(str(value), 40) if not isinstance(value, int) else str(value)


def format_seconds(seconds: float) -> str:
    """0.25s, 100ms, 5m, 1h, 7d: the largest unit that divides the value."""
    if seconds == 0:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class DurationBounds:
    low: float
    high: float

    def __str__(self) -> str:
        return f"{format_seconds(self.low)} … {format_seconds(self.high)}"

    def problem(self, seconds: float) -> str | None:
        if not math.isfinite(seconds):
            return "is not a finite duration"
        if seconds < 0:
            return "must not be negative"
        if seconds < self.low:
            return "is too short"
        if seconds > self.high:
            return "is too long"
        return None


_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86400.0
# Every duration setting, config key and command-line flag alike, by its name. The floors keep a
# typo from flooding the server (interval = 1e-9 sent 47,524 commands in 8 s to an idle Redis);
# the ceilings catch units mixed up ("3600" meant as ms). `allow_zero` decides whether 0 is in.
DURATION_BOUNDS: dict[str, DurationBounds] = {
    # Polling: at the 0.1 s floor a poll and its probes are ~40 commands/s per instance (the
    # TUI's own fastest step is 0.25 s); a window holds window/interval samples.
    "interval": DurationBounds(0.1, _HOUR),
    "window": DurationBounds(0.1, _HOUR),
    "timeout": DurationBounds(0.1, 5 * _MINUTE),  # a poll's, and a channel's delivery attempt
    "duration": DurationBounds(0.25, _DAY),  # `cachetop hotkeys --duration`
    # Alert rules and [alerts].
    "for": DurationBounds(0, 7 * _DAY),
    "keep_firing_for": DurationBounds(0, 7 * _DAY),
    "cooldown": DurationBounds(1, 7 * _DAY),
    "instance_down_for": DurationBounds(0, 7 * _DAY),
    "delivery_deadline": DurationBounds(1, 7 * _DAY),
    # [hotkeys] duty cycles: a MONITOR phase shorter than 0.1 s reads nothing useful.
    "monitor_on": DurationBounds(0.1, _HOUR),
    "monitor_off": DurationBounds(0, _DAY),
    "watch_on": DurationBounds(0.1, _HOUR),
    "watch_off": DurationBounds(0, _DAY),
    "stampede_window": DurationBounds(0.01, 10 * _MINUTE),
}
# Any other duration: finite, at least a millisecond, at most 30 days.
OTHER_DURATIONS = DurationBounds(0.001, 30 * _DAY)


def bounds_for(name: str) -> DurationBounds:
    return DURATION_BOUNDS.get(name.lstrip("-"), OTHER_DURATIONS)


def bounded_duration(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A duration setting (or --flag) checked against its bounds; the ValueError is the message,
    like `interval = 1e-09 is too short: allowed 0.1s … 1h`."""
    bounds = bounds_for(name)
    try:
        seconds = _parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if seconds == 0 and not allow_zero:
        raise ValueError(f"{name} must be positive: allowed {bounds}")
    problem = bounds.problem(seconds)
    if problem:
        # A flag as it was typed (--interval 1e-9), a key as it was written (interval = "1e-9").
        shown = (
            f"{name} {_shown_value(value)[1:-1]}"
            if name.startswith("-")
            else f"{name} = {_shown_value(value)}"
        )
        raise ValueError(f"{shown} {problem}: allowed {bounds}")
    return seconds

"""Human formatting of metric values, shared by the snapshot table and the TUI.

Every formatter takes None (undefined over the window) and returns "–", so a reader never
mistakes "no data" for zero.
"""

from __future__ import annotations

NA = "–"


def pct(value: float | None, digits: int = 1) -> str:
    return NA if value is None else f"{value:.{digits}f}%"


def rate(value: float | None) -> str:
    if value is None:
        return NA
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.1f}"


def ms(value: float | None) -> str:
    if value is None:
        return NA
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    if value >= 10:
        return f"{value:.0f}ms"
    if value >= 1:
        return f"{value:.1f}ms"
    return f"{value * 1000:.0f}µs"


def size(value: float | None) -> str:
    if value is None:
        return NA
    for limit, suffix in ((1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")):
        if value >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{int(value)}B"


def short_count(value: float | None) -> str:
    """A count in at most 5 characters: 842, 12.4k, 3.1M."""
    if value is None:
        return NA
    return f"{int(value)}" if abs(value) < 1000 else rate(value)


def count(value: float | None) -> str:
    return NA if value is None else f"{int(value):,}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NA
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"

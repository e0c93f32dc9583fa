"""The status line of a stream source (MONITOR, watch): what it does, and what happened to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cachetop.hotkeys.config import HotKeySettings

if TYPE_CHECKING:  # types only: the samplers import this module
    from cachetop.hotkeys.memcached_watch import WatchSampler, WatchStats
    from cachetop.hotkeys.redis_monitor import MonitorSampler, MonitorStats


def monitor_status(sampler: MonitorSampler, settings: HotKeySettings) -> tuple[str, str]:
    s = settings
    cycle = f"MONITOR {s.monitor_on:g}s on / {s.monitor_off:g}s off"
    if sampler.max_lines:
        cycle += f", at most {sampler.max_lines:,} lines"
    cycle += f"; server bound on its buffer: {sampler.server_limit}"
    # What happened first, the standing description last: the panel cuts long lines.
    notes = stream_notes(sampler.stats)
    if sampler.stats.stops_for_stall:
        notes.insert(
            0,
            f"the guardian ended MONITOR {times(sampler.stats.stops_for_stall)}"
            f" (not read for {sampler.stall:g}s)",
        )
    if sampler.stats.last_stop and sampler.phase == "waiting":
        return "paused", "; ".join([sampler.stats.last_stop, *notes, cycle])
    return sampler.phase, "; ".join([*notes, cycle])


def watch_status(sampler: WatchSampler) -> tuple[str, str]:
    return sampler.phase, "; ".join([*stream_notes(sampler.stats), "memcached watch fetchers mutations"])


def times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def stream_notes(stats: MonitorStats | WatchStats) -> list[str]:
    """What happened to a MONITOR or watch stream that the user should know about."""
    notes = []
    if stats.stops_for_suspend:
        notes.append(f"ended {times(stats.stops_for_suspend)} for a suspension (Ctrl-Z)")
    if stats.long_lines:
        notes.append(f"{stats.long_lines:,} over-long lines cut")
    return notes

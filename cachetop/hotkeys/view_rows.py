"""How a hot-key collector's state reads in its view: the rows, which keys are certainly hot,
and the status line that says what the source is doing.

The collector owns the samplers and the counters; these functions only describe them.
"""

from __future__ import annotations

from typing import Any

from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.memcached_watch import WatchSampler, WatchStats
from cachetop.hotkeys.redis_monitor import MonitorSampler, MonitorStats
from cachetop.hotkeys.scan import ThrottledScan
from cachetop.hotkeys.view import HotKey, show_key
from cachetop.metrics.topk import KeyCount


def is_hot(kc: KeyCount, settings: HotKeySettings) -> bool:
    s = settings
    _, share, ops = guaranteed(kc)
    return (share or 0) >= s.min_share and (ops or 0) >= s.min_ops


def hot_key_row(kc: KeyCount, hot: bool, knows_hits: bool) -> HotKey:
    return HotKey(
        key=kc.key,
        display=show_key(kc.key),
        count=kc.count,
        ops_per_sec=kc.ops_per_sec,
        share=kc.share,
        reads=kc.reads,
        writes=kc.writes,
        hits=kc.hits if knows_hits else None,
        misses=kc.misses if knows_hits else None,
        error=kc.error,
        hot=hot,
        history=kc.history,
    )


def source_status(status: str, error: str | None, sampler: Any, settings: HotKeySettings) -> tuple[str, str]:
    s = settings
    if status in ("off", "error"):
        return status, error or ("hot keys are off for this instance" if status == "off" else "")
    if isinstance(sampler, MonitorSampler):
        cycle = f"MONITOR {s.monitor_on:g}s on / {s.monitor_off:g}s off"
        if sampler.max_lines:
            cycle += f", at most {sampler.max_lines:,} lines"
        cycle += f"; server bound on its buffer: {sampler.server_limit}"
        # What happened first, the standing description last: the panel cuts long lines.
        notes = _stream_notes(sampler.stats)
        if sampler.stats.stops_for_stall:
            notes.insert(
                0,
                f"the guardian ended MONITOR {_times(sampler.stats.stops_for_stall)}"
                f" (not read for {sampler.stall:g}s)",
            )
        if sampler.stats.last_stop and sampler.phase == "waiting":
            return "paused", "; ".join([sampler.stats.last_stop, *notes, cycle])
        return sampler.phase, "; ".join([*notes, cycle])
    if isinstance(sampler, WatchSampler):
        return sampler.phase, "; ".join([*_stream_notes(sampler.stats), "memcached watch fetchers mutations"])
    if isinstance(sampler, ThrottledScan):
        return "sampling", f"LFU counters via SCAN + OBJECT FREQ, {s.scan_budget} keys/s"
    if sampler is not None:
        return getattr(sampler, "phase", "sampling"), "server-side HOTKEYS"
    return status, ""


def guaranteed(kc: KeyCount) -> tuple[bytes, float | None, float | None]:
    """(key, share %, ops/s) from the count less its Space-Saving error: what is certain."""
    fraction = max(0, kc.count - kc.error) / kc.count if kc.count > 0 else 0.0
    share = None if kc.share is None else kc.share * 100 * fraction
    ops = None if kc.ops_per_sec is None else kc.ops_per_sec * fraction
    return kc.key, share, ops


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _stream_notes(stats: MonitorStats | WatchStats) -> list[str]:
    """What happened to a MONITOR or watch stream that the user should know about."""
    notes = []
    if stats.stops_for_suspend:
        notes.append(f"ended {_times(stats.stops_for_suspend)} for a suspension (Ctrl-Z)")
    if stats.long_lines:
        notes.append(f"{stats.long_lines:,} over-long lines cut")
    return notes

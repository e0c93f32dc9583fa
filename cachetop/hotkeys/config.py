"""The `[hotkeys]` TOML section: how hot keys are sampled, counted and judged hot.

[hotkeys]
k = 20                    # keys shown per instance
counters = 1000           # Space-Saving counters per 1 s slot (memory bound)
monitor_on = "1s"         # MONITOR duty cycle: sample this long...
monitor_off = "9s"        # ...then rest this long
monitor_max_lines = 50000   # ...or stop the phase sooner, once this many lines are read
watch_on = "10s"          # memcached watch duty cycle (watch_off = 0: continuous)
watch_off = "0s"
omem_limit = "8MiB"       # stop MONITOR before its output buffer passes this
monitor_stall = "0.5s"    # the guardian ends a MONITOR that cachetop has not read for this long
min_share = 3.0           # a key is hot at >= 3% of the instance's sampled ops...
min_ops = 5               # ...and >= 5 ops/s (a floor, so 1 of 3 commands on an idle cache is not hot)
separators = ":"          # prefix roll-up: user:123:cart -> user:*:cart
scan_budget = 500         # LFU SCAN: keys looked at per second
stampede_window = "2s"    # misses then >= stampede_writers writers of one key within this
stampede_writers = 3
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import Any

from cachetop.engine.configfile import ConfigContext, KeyPath

log = logging.getLogger("cachetop.config")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


@dataclass(frozen=True, slots=True)
class HotKeySettings:
    k: int = 20
    counters: int = 1000
    monitor_on: float = 1.0
    monitor_off: float = 9.0
    watch_on: float = 10.0
    watch_off: float = 0.0
    omem_limit: int = 8 * 1024 * 1024
    # A MONITOR phase ends once it has read this many lines (0: only monitor_on ends it). While
    # MONITOR is on, a saturated server loses ~60% of its throughput, so a busy server should pay
    # for a sample big enough for the shares (50k lines: a 30% share within ±0.4 points, a 1%
    # share within ±0.1, at 95%), not for a whole second of MONITOR.
    monitor_max_lines: int = 50_000
    # The guardian process ends a MONITOR that cachetop has not read for this long (suspended,
    # stopped, stalled): at 20 MB/s of MONITOR output, 0.5 s leaves about 10 MB on the server.
    monitor_stall: float = 0.5
    min_share: float = 3.0  # percent of the instance's sampled ops
    min_ops: float = 5.0  # a small absolute floor
    separators: str = ":"
    scan_budget: int = 500
    # The background big-key walk (SCAN + MEMORY USAGE, ~100 commands/s per instance) fed no view:
    # it is off, and the `big_keys` key is retired. The code stays for the keyspace analysis.
    big_keys: bool = False
    stampede_window: float = 2.0
    stampede_writers: int = 3
    history: int = 30


KEYS = tuple(k for k in HotKeySettings.__dataclass_fields__ if k != "big_keys")
STALL_MIN_S, STALL_MAX_S = 0.3, 10.0
# Keys an earlier cachetop accepted: still allowed, ignored with a warning that says what to do.
RETIRED = {
    "monitor_parse_budget": "monitor_parse_budget is ignored and can be removed: a MONITOR phase now"
    " ends at monitor_max_lines (default 50000), which spares the server as well as cachetop",
    "big_keys": "big_keys is ignored and can be removed: no view showed big keys, and the background"
    " SCAN + MEMORY USAGE walk cost each instance about 100 commands/s per cachetop",
}


def parse_size(value: Any) -> int:
    """8388608, "8MiB", "512 KiB", "10MB" -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
    raise ValueError(f'{value!r} is not a size (allowed: a number of bytes, or "512KiB", "8MiB", "10MB")')


def size_setting(ctx: ConfigContext, value: Any, path: KeyPath, minimum: int, too_small: str) -> int:
    """A size key of a config section: parse_size's mistakes, and `too_small` under `minimum`, fail
    at `path` (its last part names the key)."""
    name = str(path[-1])
    try:
        size = parse_size(value)
    except ValueError as exc:
        ctx.fail(path, f"{name}: {exc}")
    if size < minimum:
        ctx.fail(path, too_small)
    return size


def parse_hotkeys_section(value: Any, ctx: ConfigContext) -> HotKeySettings:
    path: KeyPath = ("hotkeys",)
    table = ctx.table(value, path)
    ctx.check_keys({k: v for k, v in table.items() if k not in RETIRED}, KEYS, path)
    for name in RETIRED:
        if name in table:
            log.warning("%s: %s", ctx.where((*path, name)), RETIRED[name])
    s = HotKeySettings()
    for name in ("k", "counters", "scan_budget", "stampede_writers", "history"):
        if name in table:
            s = replace(s, **{name: ctx.integer(table[name], (*path, name), minimum=1)})
    if "monitor_max_lines" in table:
        lines = ctx.integer(table["monitor_max_lines"], (*path, "monitor_max_lines"), minimum=0)
        if 0 < lines < 1000:
            ctx.fail(
                (*path, "monitor_max_lines"),
                "monitor_max_lines must be 0 (no cap) or at least 1000: fewer lines cannot rank 1% keys",
            )
        s = replace(s, monitor_max_lines=lines)
    for name in ("monitor_on", "watch_on", "stampede_window"):
        if name in table:
            s = replace(s, **{name: ctx.duration(table[name], (*path, name))})
    for name in ("monitor_off", "watch_off"):
        if name in table:
            s = replace(s, **{name: ctx.duration(table[name], (*path, name), allow_zero=True)})
    if "monitor_stall" in table:
        stall = ctx.duration(table["monitor_stall"], (*path, "monitor_stall"))
        if not STALL_MIN_S <= stall <= STALL_MAX_S:
            ctx.fail(
                (*path, "monitor_stall"),
                f"monitor_stall must be from {STALL_MIN_S:g}s (the heartbeat comes every 0.1s) to"
                f" {STALL_MAX_S:g}s (longer lets the server buffer too much)",
            )
        s = replace(s, monitor_stall=stall)
    if "omem_limit" in table:
        limit = size_setting(
            ctx, table["omem_limit"], (*path, "omem_limit"), 64 * 1024, "omem_limit must be at least 64KiB"
        )
        s = replace(s, omem_limit=limit)
    if "min_share" in table:
        share = ctx.number(table["min_share"], (*path, "min_share"), minimum=0)
        if share > 100:
            ctx.fail((*path, "min_share"), "min_share is a percentage (allowed: 0 to 100)")
        s = replace(s, min_share=share)
    if "min_ops" in table:
        s = replace(s, min_ops=ctx.number(table["min_ops"], (*path, "min_ops"), minimum=0))
    if "separators" in table:
        seps = ctx.string(table["separators"], (*path, "separators"))
        if not seps:
            ctx.fail((*path, "separators"), 'separators must hold at least one character (like ":" or ":/")')
        s = replace(s, separators=seps)
    if s.counters < s.k:
        ctx.fail((*path, "counters"), f"counters ({s.counters}) must be at least k ({s.k})")
    return s

"""The `[history]` and `[warm]` TOML sections: how history is bucketed and kept, and warming ahead.

[history]
bucket = "1h"          # one row of top keys, top prefixes and metrics per instance per bucket
season = 24            # buckets per cycle (24 one-hour buckets: a day); "yesterday" is one season back
retention = "35d"      # buckets older than this are dropped
max_bytes = "64MiB"    # the SQLite file stays under this: the oldest buckets (and predictions) go first
top = 200              # keys (and prefixes) kept per bucket
enabled = true

[warm]
predict = true         # the daemon warms the keys predicted for the next bucket...
lead = "2m"            # ...this long before it starts
strategy = "file"      # through this warmer plugin (values always come from it)
options = { path = "/etc/cachetop/values.jsonl" }
top = 100              # predicted keys warmed per instance and bucket
rate = 5000            # keys written per second at most
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from cachetop.engine.config import Config
from cachetop.engine.configfile import ConfigContext, KeyPath
from cachetop.hotkeys.config import HotKeySettings, size_setting
from cachetop.util.durations import format_seconds, parse_duration

MIN_BUCKET_S, MAX_BUCKET_S = 0.5, 7 * 86400.0
MIN_MAX_BYTES = 64 * 1024  # a few buckets of 200 keys: less cannot hold a season
MAX_RETENTION_S = 10 * 365 * 86400.0


@dataclass(frozen=True, slots=True)
class HistorySettings:
    bucket: float = 3600.0
    season: int = 24
    retention: float = 35 * 86400.0
    max_bytes: int = 64 * 1024 * 1024
    top: int = 200
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class WarmAheadSettings:
    predict: bool = False
    lead: float = 120.0
    strategy: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    top: int = 100
    rate: float = 5000.0


HISTORY_KEYS = ("bucket", "season", "retention", "max_bytes", "top", "enabled")
WARM_KEYS = ("predict", "lead", "strategy", "options", "top", "rate")


def _seconds(ctx: ConfigContext, value: Any, path: KeyPath, low: float, high: float) -> float:
    name = str(path[-1])
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        ctx.fail(path, f"{name}: {exc}")
    if not low <= seconds <= high:
        ctx.fail(path, f"{name} must be from {format_seconds(low)} to {format_seconds(high)}")
    return seconds


def parse_history_section(value: Any, ctx: ConfigContext) -> HistorySettings:
    path: KeyPath = ("history",)
    table = ctx.table(value, path)
    ctx.check_keys(table, HISTORY_KEYS, path)
    s = HistorySettings()
    if "bucket" in table:
        s = replace(s, bucket=_seconds(ctx, table["bucket"], (*path, "bucket"), MIN_BUCKET_S, MAX_BUCKET_S))
    if "season" in table:
        season = ctx.integer(table["season"], (*path, "season"), minimum=1)
        if season > 10_000:
            ctx.fail((*path, "season"), "season is a number of buckets per cycle (allowed: 1 to 10000)")
        s = replace(s, season=season)
    if "top" in table:
        top = ctx.integer(table["top"], (*path, "top"), minimum=1)
        if top > 10_000:
            ctx.fail((*path, "top"), "top is keys kept per bucket (allowed: 1 to 10000)")
        s = replace(s, top=top)
    if "enabled" in table:
        s = replace(s, enabled=ctx.boolean(table["enabled"], (*path, "enabled")))
    if "retention" in table:
        retention = _seconds(ctx, table["retention"], (*path, "retention"), s.bucket, MAX_RETENTION_S)
        s = replace(s, retention=retention)
    elif s.retention < s.bucket * s.season * 2:
        s = replace(s, retention=s.bucket * s.season * 2)  # at least two seasons to compare
    if "max_bytes" in table:
        too_small = "max_bytes must be at least 64KiB (a few buckets of top keys)"
        size = size_setting(ctx, table["max_bytes"], (*path, "max_bytes"), MIN_MAX_BYTES, too_small)
        s = replace(s, max_bytes=size)
    return s


def parse_warm_section(value: Any, ctx: ConfigContext) -> WarmAheadSettings:
    path: KeyPath = ("warm",)
    table = ctx.table(value, path)
    ctx.check_keys(table, WARM_KEYS, path)
    s = WarmAheadSettings()
    if "predict" in table:
        s = replace(s, predict=ctx.boolean(table["predict"], (*path, "predict")))
    if "lead" in table:
        s = replace(s, lead=_seconds(ctx, table["lead"], (*path, "lead"), 0.05, 86400.0))
    if "strategy" in table:
        s = replace(s, strategy=ctx.string(table["strategy"], (*path, "strategy")))
    if "options" in table:
        options = ctx.table(table["options"], (*path, "options"))
        for key, raw in options.items():
            if not isinstance(raw, str | int | float) or isinstance(raw, bool):
                ctx.fail((*path, "options", key), f"options.{key} must be a string or a number")
        s = replace(s, options={k: str(v) for k, v in options.items()})
    if "top" in table:
        s = replace(s, top=ctx.integer(table["top"], (*path, "top"), minimum=1))
    if "rate" in table:
        s = replace(s, rate=ctx.number(table["rate"], (*path, "rate"), minimum=0))
    if s.predict and not s.strategy:
        ctx.fail(
            (*path, "predict"),
            "predict = true needs a strategy: the warmer plugin that gives the values"
            ' (e.g. strategy = "file")',
        )
    return s


def history_settings(config: Config) -> HistorySettings:
    found = config.sections.get("history")
    return found if isinstance(found, HistorySettings) else HistorySettings()


def warm_settings(config: Config) -> WarmAheadSettings:
    found = config.sections.get("warm")
    return found if isinstance(found, WarmAheadSettings) else WarmAheadSettings()


def key_separators(config: Config) -> str:
    """The prefix roll-up's separators ([hotkeys] separators), which history rolls keys up with."""
    found = config.sections.get("hotkeys")
    return (found if isinstance(found, HotKeySettings) else HotKeySettings()).separators


def describe(config: Config) -> list[str]:
    """`cachetop config check` lines: what history keeps and what warming ahead does."""
    from cachetop.util.safe_text import display_key

    h = history_settings(config)
    lines = [
        f"history: {format_seconds(h.bucket)} buckets, season {h.season} buckets, top {h.top} keys,"
        f" kept {format_seconds(h.retention)}, at most {h.max_bytes:,} bytes"
        + ("" if h.enabled else " (enabled = false: not kept)")
    ]
    w = warm_settings(config)
    if w.predict:
        lines.append(
            f"warm ahead: top {w.top} predicted keys per instance, {format_seconds(w.lead)} before each"
            f" bucket, values from {display_key(w.strategy or '', 60)}, at most {w.rate:g} keys/s"
        )
    return lines

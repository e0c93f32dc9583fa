"""The Keyspace tab's text, from one instance's report as JSON (`cachetop keyspace --json`'s element).

Pure functions over the dict, so they read a report just made and one loaded from the state dir
alike, and tolerate fields a newer or older report lacks. Names in the JSON are already escaped
(display_key); they are still treated as untrusted text here (a state file can be edited):
control characters escaped again (a no-op on escaped text) and cut to the column.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from cachetop.tui.columns import Column
from cachetop.tui.overview_rows import Row
from cachetop.util import format as fmt
from cachetop.util.safe_text import ELLIPSIS, escape_controls

PREFIX_COLUMNS = (
    Column("prefix", "prefix", 16, 0, right=False),
    Column("keys", "keys", 13, 0),
    Column("bytes", "bytes", 13, 0),
    Column("mean", "mean", 6, 0),
    Column("ttl", "ttl", 9, 0, right=False),
    Column("zip", "zstd", 6, 0),
)
WIDE_EXTRA = (
    Column("idle", "idle >1d", 9, 0),
    Column("lz4", "lz4", 5, 0),
    Column("saved", "saved", 7, 0),
)
TTL_LABELS = {"none": "none", "lt_1m": "<1m", "lt_1h": "<1h", "lt_1d": "<1d", "longer": ">1d"}
IDLE_OVER_1D = ("lt_1w", "longer")  # the idle buckets above one day
IDLE_OVER_LABELS = {3600: "1h", 86400: "1d", 604800: "1w"}
BIG_KEYS_SHOWN = 5
CLIFFS_SHOWN = 3


def shown(value: object, width: int) -> str:
    """Untrusted text from a report, escaped and cut to `width` cells."""
    text = escape_controls(str(value))
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def prefix_columns(width: int) -> tuple[Column, ...]:
    """The 80-column set, plus idle, lz4 and saved bytes when they fit (2 cells of padding each)."""
    full = PREFIX_COLUMNS + WIDE_EXTRA
    return full if width >= sum(c.width + 2 for c in full) + 2 else PREFIX_COLUMNS


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def with_error(est: float | None, ci: object, render: Any, exact_render: Any) -> str:
    """'1.2M ±3%' from an estimate and its 95% interval [low, high]; exact figures with no ±."""
    if est is None:
        return fmt.NA
    if not isinstance(ci, Sequence) or len(ci) != 2 or ci[0] == ci[1]:
        return exact_render(est)
    low, high = (_num(ci[0]) or 0.0), (_num(ci[1]) or 0.0)
    if est <= 0:
        return f"{render(est)} ±{render((high - low) / 2)}"
    pct = (high - low) / 2 / est * 100
    return f"{render(est)} ±{pct:.0f}%" if pct >= 1 else f"{render(est)} ±<1%"


def _counts(buckets: object) -> tuple[dict[Any, float], float]:
    """A report's bucket counts (TTL or idle buckets) as numbers, and their total (0 when absent)."""
    if not isinstance(buckets, Mapping):
        return {}, 0.0
    counts = {k: _num(v) or 0.0 for k, v in buckets.items()}
    return counts, sum(counts.values())


def _ttl_text(ttl: object) -> str:
    """The largest TTL bucket and its share: 'none', '<1h 72%'."""
    counts, total = _counts(ttl)
    if total <= 0:
        return fmt.NA
    top, n = max(counts.items(), key=lambda kv: kv[1])
    label = TTL_LABELS.get(str(top), shown(top, 6))
    return label if n >= total * 0.995 else f"{label} {n / total:.0%}"


def _idle_share(idle: object) -> str:
    counts, total = _counts(idle)
    if total <= 0:
        return fmt.NA
    return f"{sum(counts.get(k, 0.0) for k in IDLE_OVER_1D) / total:.0%}"


def _ratio(compress: object, codec: str) -> str:
    if not isinstance(compress, Mapping) or _num(compress.get(f"{codec}_ratio")) is None:
        return fmt.NA
    return f"{_num(compress.get(f'{codec}_ratio')):.1f}x"


def prefix_rows(report: Mapping[str, Any]) -> list[Row]:
    rows = []
    prefixes = report.get("prefixes") or []
    for i, p in enumerate(prefixes if isinstance(prefixes, Sequence) else []):
        if not isinstance(p, Mapping):
            continue
        compress = p.get("compress")
        worth = isinstance(compress, Mapping) and compress.get("recommend") is True
        saved = _num(compress.get("saved_bytes_est")) if isinstance(compress, Mapping) else None
        cells = {
            "prefix": (shown(p.get("prefix", "?"), 40), None, "bold"),
            "keys": (
                with_error(_num(p.get("keys_est")), p.get("keys_ci95"), fmt.short_count, fmt.count),
                None,
                "",
            ),
            "bytes": (
                with_error(_num(p.get("bytes_est")), p.get("bytes_ci95"), fmt.size, fmt.size),
                None,
                "",
            ),
            "mean": (fmt.size(_num(p.get("mean_bytes"))), None, ""),
            "ttl": (_ttl_text(p.get("ttl")), None, ""),
            "zip": (_ratio(compress, "zstd") + (" ✓" if worth else ""), "good" if worth else None, ""),
            "idle": (_idle_share(p.get("idle")), None, ""),
            "lz4": (_ratio(compress, "lz4"), None, ""),
            "saved": (fmt.size(saved) if worth and saved else "", None, ""),
        }
        rows.append(Row(f"prefix:{i}", cells))
    return rows


def age_text(saved_at: float | None, now: float | None = None) -> str:
    """'just now', '42s ago', '3m ago', '2h ago', '5d ago'."""
    if saved_at is None:
        return ""
    seconds = max(0.0, (time.time() if now is None else now) - saved_at)
    if seconds < 5:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def headline(report: Mapping[str, Any], saved_at: float | None, now: float | None = None) -> str:
    """What the figures rest on: keys, the sample, the time it took, and how old they are (one line
    at 80 columns for up to 9,999,999 keys)."""
    total = _num(report.get("keys_total"))
    # Names counted by the walk, not DBSIZE at its start: keys written during the walk made the line
    # read "2,021 of 2,014 keys sampled" on a busy server.
    counted = _num(report.get("keys_scanned"))
    if counted is not None and report.get("complete", True):
        total = counted
    sampled = _num(report.get("keys_sampled"))
    source = report.get("source")
    if source == "metadump":
        line = f"{fmt.count(total)} items listed (metadump: every item, exact)"
    else:
        line = f"{fmt.count(sampled)} of {fmt.count(total)} keys sampled"
    took = _num(report.get("elapsed_s"))
    if took is not None:
        line += f" in {took:.1f}s"
    if saved_at is not None:
        clock = time.strftime("%H:%M:%S", time.localtime(saved_at))
        line += f" · analysed {age_text(saved_at, now)} ({clock})"
    return line


def idle_line(report: Mapping[str, Any]) -> str:
    items = report.get("idle") or []
    parts = []
    for item in items if isinstance(items, Sequence) else []:
        if not isinstance(item, Mapping):
            continue
        over = _num(item.get("over_s"))
        if over is None:
            continue
        label = IDLE_OVER_LABELS.get(int(over)) or fmt.duration(over)
        keys, size = _num(item.get("keys_est")), _num(item.get("bytes_est"))
        parts.append(f">{label} {fmt.short_count(keys)} keys {fmt.size(size)}")
    return "idle: " + " · ".join(parts) if parts else "idle: not known (an LFU policy keeps no idle time)"


def cliff_lines(report: Mapping[str, Any], now: float | None = None) -> list[str]:
    cliffs = report.get("cliffs") or []
    now = time.time() if now is None else now
    lines = []
    for cliff in (cliffs if isinstance(cliffs, Sequence) else [])[:CLIFFS_SHOWN]:
        if not isinstance(cliff, Mapping) or _num(cliff.get("at")) is None:
            continue
        at = float(cliff["at"])
        clock = time.strftime("%H:%M:%S", time.localtime(at))
        when = f"in {fmt.duration(at - now)}" if at >= now else f"{fmt.duration(now - at)} ago"
        ci = cliff.get("keys_ci95")
        keys = with_error(_num(cliff.get("keys_est")), ci, fmt.count, fmt.count)
        names = cliff.get("prefixes") or []
        who = ", ".join(shown(p, 24) for p in (names if isinstance(names, Sequence) else [])[:3])
        lines.append(f"cliff at {clock} ({when}): {keys} keys expire in that second · {who}")
        if cliff.get("advice"):
            lines.append("  " + shown(cliff["advice"], 400))
    return lines or ["cliffs: none (no second with far more expiries than the average)"]


def compress_lines(report: Mapping[str, Any]) -> list[str]:
    lines = []
    for p in report.get("prefixes") or []:
        compress = p.get("compress") if isinstance(p, Mapping) else None
        if not isinstance(compress, Mapping) or compress.get("recommend") is not True:
            continue
        saved = _num(compress.get("saved_bytes_est"))
        codec = shown(compress.get("codec", "zstd"), 6)
        lines.append(f"compress {shown(p.get('prefix', '?'), 24)} with {codec}: saves ~{fmt.size(saved)}")
    return lines or ["compression: not worth it on any prefix (values under 256 B or shrinking < 20%)"]


def big_key_lines(report: Mapping[str, Any]) -> list[str]:
    keys = report.get("big_keys") or []
    parts = []
    for k in (keys if isinstance(keys, Sequence) else [])[:BIG_KEYS_SHOWN]:
        if isinstance(k, Mapping):
            size = fmt.size(_num(k.get("bytes")))
            parts.append(f"{shown(k.get('key', '?'), 30)} {size} {shown(k.get('type', ''), 8)}")
    return ["big keys: " + " · ".join(parts)] if parts else []


def details_text(report: Mapping[str, Any], now: float | None = None) -> str:
    """Everything under the table: idle totals, cliffs, compression advice, big keys, notes."""
    lines = [idle_line(report), *cliff_lines(report, now), *compress_lines(report), *big_key_lines(report)]
    notes = report.get("notes") or []
    lines += [
        shown(n, 200) for n in (notes if isinstance(notes, Sequence) and not isinstance(notes, str) else [])
    ]
    return "\n".join(lines)


def progress_text(progress: Any) -> str:
    """One line while an analysis runs (KeyspaceProgress: keys_scanned, keys_total_hint,
    keys_sampled, phase, elapsed_s)."""
    scanned = getattr(progress, "keys_scanned", 0)
    hint = getattr(progress, "keys_total_hint", None)
    of = f" of ~{fmt.count(hint)}" if hint else ""
    phase = shown(getattr(progress, "phase", "") or "running", 20)
    return (
        f"analysing ({phase}): {fmt.count(scanned)}{of} keys scanned, "
        f"{fmt.count(getattr(progress, 'keys_sampled', 0))} sampled, "
        f"{getattr(progress, 'elapsed_s', 0.0):.1f}s · leaving the tab cancels"
    )

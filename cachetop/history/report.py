"""The trends report of one instance, from its stored history: JSON for `trends --json`, and the
text both `cachetop trends` and the dashboard's Trends tab show (it fits 80x24)."""

from __future__ import annotations

import time
from typing import Any

from cachetop.analysis.trends import (
    bar_chart,
    compare,
    figures,
    hit_ratio_by_phase,
    season_labels,
)
from cachetop.history.bucket import bucket_index
from cachetop.history.config import HistorySettings
from cachetop.history.store import HistoryStore
from cachetop.history.warm_ahead import SEASONS_KEPT, plan_ahead
from cachetop.hotkeys.view import JSON_KEY_MAX, show_key
from cachetop.util.durations import format_seconds
from cachetop.util.format import size as format_bytes

SHOWN = 5  # keys per line of text
PREDICTORS_SHOWN = ("combined", "seasonal", "sequence", "naive")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def build_report(
    store: HistoryStore,
    instance: str,
    settings: HistorySettings,
    *,
    separators: str = ":",
    k: int = 100,
    now: float | None = None,
) -> dict[str, Any] | None:
    """None when the history holds no closed bucket of this instance."""
    now = time.time() if now is None else now
    since = bucket_index(now, settings.bucket) - max(7, SEASONS_KEPT) * settings.season - 1
    history = store.buckets(instance, settings.bucket, since=since)
    if not history:
        return None
    index = max(history)
    this = history[index]
    labels = season_labels(settings.bucket, settings.season)

    def change_json(change: Any) -> dict[str, list[str]] | None:
        if change is None:
            return None
        return {
            "appeared": [show_key(k, JSON_KEY_MAX) for k in change.appeared],
            "vanished": [show_key(k, JSON_KEY_MAX) for k in change.vanished],
        }

    compared = [
        {
            "label": c.label,
            "index": c.index,
            "start": c.index * settings.bucket,
            "metrics": None if c.figures is None else {n: _round(v) for n, v in c.figures.items()},
            "keys": change_json(c.keys),
            "prefixes": change_json(c.prefixes),
        }
        for c in compare(history, index, settings.season, labels)
    ]
    plan = plan_ahead(store, instance, settings, separators=separators, top=k, now=now)
    scored = store.precision(instance, settings.bucket, last=settings.season)
    return {
        "instance": instance,
        "bucket_s": settings.bucket,
        "season": settings.season,
        "buckets_stored": len(history),
        "bytes_stored": store.size_bytes(),
        "this": {
            "index": index,
            "start": this.start,
            "metrics": {n: _round(v) for n, v in figures(this.metrics).items()},
            "top_keys": [{"key": show_key(k, JSON_KEY_MAX), "count": c} for k, c in this.keys[:20]],
            "top_prefixes": [
                {"prefix": show_key(p, JSON_KEY_MAX), "count": c} for p, c in this.prefixes[:20]
            ],
        },
        "compare": compared,
        "hit_ratio_by_phase": [_round(v) for v in hit_ratio_by_phase(history, settings.season)],
        "prediction": {
            "for_index": plan.targets[0],
            "for_start": plan.targets[0] * settings.bucket,
            "k": k,
            "keys": [show_key(key, JSON_KEY_MAX) for key in plan.predictions[0].top("combined", 20)],
            "precision_at_k": {
                p: {
                    "mean": _round(sum(v for _, v in scored[p]) / len(scored[p])),
                    "buckets": len(scored[p]),
                }
                for p in PREDICTORS_SHOWN
                if scored.get(p)
            },
        },
    }


def _clock(seconds: float, bucket_s: float) -> str:
    fmt = "%H:%M" if bucket_s >= 60 else "%H:%M:%S"
    return time.strftime(fmt, time.localtime(seconds))


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}%"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f}"


def _delta(now: float | None, then: float | None) -> str:
    return "" if now is None or then is None else f"{now - then:+.1f}"


def render_text(report: dict[str, Any], width: int = 80) -> list[str]:
    """At most 22 lines of at most `width` cells."""
    bucket = report["bucket_s"]
    this = report["this"]
    start = this["start"]
    lines = [
        f"{report['instance']} · bucket {format_seconds(bucket)} · season {report['season']} buckets ·"
        f" {_clock(start, bucket)}–{_clock(start + bucket, bucket)} · {report['buckets_stored']} stored,"
        f" {format_bytes(report['bytes_stored'])}"
    ]
    head = f"{'':14}{'this':>10}"
    for c in report["compare"]:
        head += f"{c['label']:>15}{'Δ':>8}"
    lines.append(head)
    rows = (
        ("hit ratio", "hit_ratio", _pct),
        ("ops/s", "ops_per_sec", _num),
        ("evictions", "evictions", _num),
    )
    for label, name, fmt in rows:
        now_v = this["metrics"].get(name)
        line = f"{label:14}{fmt(now_v):>10}"
        for c in report["compare"]:
            then_v = None if c["metrics"] is None else c["metrics"].get(name)
            line += f"{fmt(then_v):>15}{_delta(now_v, then_v):>8}"
        lines.append(line)
    first = report["compare"][0]
    if first["keys"] is not None:
        vs = f"vs {first['label']}"
        lines.append(f"new keys {vs}: " + (", ".join(first["keys"]["appeared"][:SHOWN]) or "none"))
        lines.append(f"gone keys {vs}: " + (", ".join(first["keys"]["vanished"][:SHOWN]) or "none"))
        lines.append("new prefixes: " + (", ".join(first["prefixes"]["appeared"][:SHOWN]) or "none"))
        lines.append("gone prefixes: " + (", ".join(first["prefixes"]["vanished"][:SHOWN]) or "none"))
    else:
        lines.append(f"{first['label']}: not in the history yet (nothing to compare)")
    day = abs(bucket * report["season"] - 86400.0) < 1e-6
    lines.append("hit ratio by hour of day (UTC):" if day else "hit ratio by bucket of the season (0 first):")
    phases = report["hit_ratio_by_phase"]
    chart = bar_chart(phases, height=5, width=width - 8)
    known = [v for v in phases if v is not None]
    if chart:
        top, low = 100.0, max(0.0, min(known) - 5.0)
        for i, row in enumerate(chart):
            label = f"{top:>5.0f}% " if i == 0 else f"{low:>5.0f}% " if i == len(chart) - 1 else " " * 7
            lines.append(label + row)
        lines.append(" " * 7 + _axis(len(phases), width - 8, bucket if day else None))
    pred = report["prediction"]
    lines.append(f"next bucket ({_clock(pred['for_start'], bucket)}): " + ", ".join(pred["keys"][:SHOWN]))
    scores = pred["precision_at_k"]
    if scores:
        parts = [f"{p} {s['mean']:.2f}" for p, s in scores.items()]
        line = f"precision@{pred['k']}: " + " · ".join(parts)
        note = " (last season)"
        lines.append(line + note if len(line + note) <= width else line)
    else:
        lines.append(f"precision@{pred['k']}: no prediction scored yet (one per bucket, once it closes)")
    return [line if len(line) <= width else line[: width - 1] + "…" for line in lines]


def _axis(season: int, width: int, bucket_s: float | None) -> str:
    """Labels under the chart's columns: the hour (a day season) or the bucket number."""
    group = max(1, -(-season // width))
    columns = -(-season // group)
    cell = max(1, min(3, width // columns))
    out = ""
    for column in range(columns):
        phase = column * group
        label = str(int(phase * bucket_s // 3600)) if bucket_s else str(phase)
        if len(out) <= column * cell and column % max(1, 3 // cell) == 0:
            out = out.ljust(column * cell) + label
    return out

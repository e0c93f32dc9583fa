"""The readable report of `cachetop sizing`: a table of hit ratio against memory per policy, the
calibration line, the answers to --hit-ratio and --at, and the notes."""

from __future__ import annotations

from typing import Any

from cachetop.commands.render_table import Column, Output
from cachetop.util.format import size
from cachetop.util.safe_text import display_key


def _ratio(point: dict[str, Any]) -> str:
    mark = "≥" if not point.get("filled", True) else ""
    return f"{mark}{point['hit_ratio']:.1f}%"


def _amount(report: dict[str, Any]):
    """Bytes as sizes; a trace without sizes counts keys."""
    if (report.get("memory_model") or {}).get("unit") == "keys":
        return lambda n: f"{round(n):,} keys"
    return size


def print_report(report: dict[str, Any], out: Output, *, hit_ratios=(), at_bytes=()) -> None:
    size = _amount(report)
    name = display_key(report["name"], out.name_max)
    if report.get("error"):
        out.line(f"{name}: {report['error']}")
        return
    now, predicted = report.get("hit_ratio_now"), report.get("hit_ratio_predicted_now")
    out.line(f"{name}: {report['policy']} at {size(report['memory_max_bytes'])}")
    if now is not None and predicted is not None:
        out.line(
            f"  hit ratio now: measured {now:.1f}%, the model says {predicted:.1f}%"
            f" ({predicted - now:+.1f} points)"
        )
    curves = report["curves"]
    if not curves:
        out.line("  no curve: no reads were seen")
        return
    columns = [Column("memory", right=True), *(Column(c["label"], right=True) for c in curves)]
    rows = []
    current = report["memory_max_bytes"]
    for i, point in enumerate(curves[0]["points"]):
        label = size(point["memory_bytes"]) + (" (now)" if point["memory_bytes"] == current else "")
        rows.append([label, *(_ratio(c["points"][i]) for c in curves)])
    out.table(None, columns, rows)
    for answer in answers(report, hit_ratios, at_bytes):
        out.line("  " + answer)
    s = report["sample"]
    out.line(
        f"  sample: {s['sampled_reads']} reads of {s['sampled_keys']} keys at rate {s['rate']:g}, "
        f"from {s['reads_total']} reads in {s['duration_s']:.1f} s; memory: {report['memory_model']['how']}"
    )
    for note in report.get("notes", []):
        out.line(f"  note: {note}")
    if any(not p.get("filled", True) for c in curves for p in c["points"]):
        out.line("  ≥: the trace was too short to warm a cache that large; its hit ratio is a lower bound")


def answers(report: dict[str, Any], hit_ratios=(), at_bytes=()) -> list[str]:
    from cachetop.analysis.sizing.curve import curve_from_json

    size = _amount(report)
    curve = curve_from_json(report["curves"][0]) if report["curves"] else None
    out = []
    if curve is None:
        return out
    for target in hit_ratios:
        need = curve.memory_for(target)
        out.append(
            f"memory for a hit ratio of {target:g}% ({curve.label}): "
            + (
                size(need)
                if need is not None
                else f"more than {size(curve.points[-1].memory_bytes)} (off the curve)"
            )
        )
    for b in at_bytes:
        hr = curve.hit_ratio_at(b)
        out.append(
            f"hit ratio at {size(b)} ({curve.label}): "
            + (f"{hr:.1f}%" if hr is not None else "off the curve (0.25x to 4x the current size)")
        )
    return out

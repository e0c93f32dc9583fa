"""The Sizing tab's chart and text, from a sizing report's JSON (no Textual: tested as text).

One row per memory size: a bar for the server's own policy (its hit ratio on a 0-100% axis), the
other policies as markers on the same axis, and the numbers at the end; the current size is
marked, and so are sizes the profile was too short to fill."""

from __future__ import annotations

from typing import Any

from cachetop.util.format import size
from cachetop.util.safe_text import display_key

MARKERS = "◆▲■"
EIGHTHS = " ▏▎▍▌▋▊▉█"


def _bar(value: float, width: int) -> list[str]:
    cells = [" "] * width
    eighths = round(max(0.0, min(100.0, value)) / 100.0 * width * 8)
    full, part = divmod(eighths, 8)
    for i in range(min(full, width)):
        cells[i] = "█"
    if part and full < width:
        cells[full] = EIGHTHS[part]
    return cells


def chart_lines(report: dict[str, Any], width: int) -> list[str]:
    curves = report.get("curves") or []
    if not curves:
        return ["no curve: the profile saw no reads"]
    numbers = "  ".join(["{:>6}"] * len(curves))
    label_w = 14
    num_w = len(numbers.format(*(["100.0%"] * len(curves))))
    bar_w = max(10, width - label_w - num_w - 4)
    current = report.get("memory_max_bytes")
    legend = "  ".join(
        (f"█ {c['label']}" if i == 0 else f"{MARKERS[(i - 1) % len(MARKERS)]} {c['label']}")
        for i, c in enumerate(curves)
    )
    lines = [f"hit ratio (0-100%) against memory · {legend}"]  # (the legend may run off: notes below)
    for row, point in enumerate(curves[0]["points"]):
        cells = _bar(point["hit_ratio"], bar_w)
        for i, curve in enumerate(curves[1:]):
            other = curve["points"][row]["hit_ratio"]
            at = min(bar_w - 1, max(0, round(other / 100.0 * bar_w) - 1))
            cells[at] = MARKERS[i % len(MARKERS)]
        mark = "▶" if point["memory_bytes"] == current else " "
        values = numbers.format(
            *(
                ("≥" if not c["points"][row].get("filled", True) else "")
                + f"{c['points'][row]['hit_ratio']:.1f}%"
                for c in curves
            )
        )
        lines.append(f"{mark}{size(point['memory_bytes']):>{label_w - 1}} {''.join(cells)} {values}")
    return lines


def summary_lines(report: dict[str, Any]) -> list[str]:
    from cachetop.analysis.sizing.curve import curve_from_json

    lines = []
    now, predicted = report.get("hit_ratio_now"), report.get("hit_ratio_predicted_now")
    if now is not None and predicted is not None:
        gap = predicted - now
        verdict = "agree" if abs(gap) <= 3.0 else "DISAGREE: read the curve with that much doubt"
        lines.append(
            f"now: {size(report['memory_max_bytes'])}, measured {now:.1f}%, predicted {predicted:.1f}% "
            f"({gap:+.1f} points: {verdict})"
        )
    curves = report.get("curves") or []
    if curves and now is not None:
        curve = curve_from_json(curves[0])
        for target in (min(99.0, now + 5.0), min(99.5, now + 10.0)):
            need = curve.memory_for(target)
            lines.append(
                f"memory for a hit ratio of {target:.0f}%: "
                + (size(need) if need is not None else "more than the curve's 4x")
            )
        current = report["memory_max_bytes"]
        for factor in (0.5, 2.0):
            hr = curve.hit_ratio_at(current * factor)
            if hr is not None:
                lines.append(f"hit ratio at {size(current * factor)}: {hr:.1f}%")
    return lines


def note_lines(report: dict[str, Any]) -> list[str]:
    return ["note: " + display_key(str(note), 300) for note in report.get("notes") or []]

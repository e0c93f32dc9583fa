"""What changed: a bucket against the same bucket one season and seven seasons back, the keys and
prefixes that appeared or vanished, and the hit ratio by bucket of the season (by hour of day).

Pure: bucket records in (anything with index, keys, prefixes, metrics), numbers and text out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cachetop.analysis.predict import BucketTop

BARS = " ▁▂▃▄▅▆▇█"
COMPARED = ("hit_ratio", "ops_per_sec", "hits", "misses", "evictions", "memory_used_bytes")


class BucketLike(BucketTop, Protocol):
    """A bucket of history with its figures too (the store's Bucket)."""

    @property
    def metrics(self) -> Mapping[str, float]: ...


def hit_ratio(metrics: Mapping[str, float]) -> float | None:
    hits, misses = metrics.get("hits", 0.0), metrics.get("misses", 0.0)
    return 100.0 * hits / (hits + misses) if hits + misses > 0 else None


def figures(metrics: Mapping[str, float]) -> dict[str, float | None]:
    out: dict[str, float | None] = {name: metrics.get(name) for name in COMPARED}
    out["hit_ratio"] = hit_ratio(metrics)
    return out


def season_labels(bucket_s: float, season: int) -> tuple[str, str]:
    """How to name one and seven seasons back: "yesterday" and "a week ago" when a season is a day."""
    if abs(bucket_s * season - 86400.0) < 1e-6:
        return "yesterday", "a week ago"
    return "1 season ago", "7 seasons ago"


@dataclass(frozen=True, slots=True)
class Change:
    appeared: tuple[bytes, ...]  # in this bucket's top n, not in the other's top list
    vanished: tuple[bytes, ...]  # in the other's top n, not in this bucket's top list


def changes(now: Sequence[tuple[bytes, int]], then: Sequence[tuple[bytes, int]], n: int = 10) -> Change:
    """Keys (or prefixes) that entered or left the top list, the biggest first."""
    now_all = {k for k, _ in now}
    then_all = {k for k, _ in then}
    appeared = tuple(k for k, _ in now if k not in then_all)[:n]
    vanished = tuple(k for k, _ in then if k not in now_all)[:n]
    return Change(appeared, vanished)


@dataclass(frozen=True, slots=True)
class Compared:
    label: str
    index: int
    figures: Mapping[str, float | None] | None  # None: that bucket is not in the history
    keys: Change | None
    prefixes: Change | None


def compare(
    history: Mapping[int, BucketLike], index: int, season: int, labels: tuple[str, str]
) -> list[Compared]:
    this = history[index]
    out = []
    for label, back in zip(labels, (season, 7 * season), strict=True):
        other = history.get(index - back)
        if other is None:
            out.append(Compared(label, index - back, None, None, None))
            continue
        out.append(
            Compared(
                label,
                index - back,
                figures(other.metrics),
                changes(this.keys, other.keys),
                changes(this.prefixes, other.prefixes),
            )
        )
    return out


def hit_ratio_by_phase(history: Mapping[int, BucketLike], season: int) -> list[float | None]:
    """Per bucket of the season (hour of day), the hit ratio over every stored bucket in it."""
    hits = [0.0] * season
    misses = [0.0] * season
    for index, record in history.items():
        phase = index % season
        hits[phase] += record.metrics.get("hits", 0.0)
        misses[phase] += record.metrics.get("misses", 0.0)
    return [100.0 * h / (h + m) if h + m > 0 else None for h, m in zip(hits, misses, strict=True)]


def bar_chart(values: Sequence[float | None], *, height: int = 5, width: int = 72) -> list[str]:
    """A column chart in `height` text rows, at most `width` cells wide (columns grouped when the
    season is longer than that), scaled from the lowest value shown to 100."""
    values = list(values)
    if not values:
        return []
    group = max(1, -(-len(values) // width))
    grouped: list[float | None] = []
    for start in range(0, len(values), group):
        part = [v for v in values[start : start + group] if v is not None]
        grouped.append(sum(part) / len(part) if part else None)
    cell = max(1, min(3, width // len(grouped)))
    known = [v for v in grouped if v is not None]
    if not known:
        return []
    low = max(0.0, min(known) - 5.0)
    span = max(100.0 - low, 1e-9)
    rows = []
    for row in range(height, 0, -1):
        line = []
        for v in grouped:
            if v is None:
                line.append(" " * cell)
                continue
            eighths = round((v - low) / span * height * 8) - (row - 1) * 8
            line.append((BARS[max(0, min(8, eighths))] * max(1, cell - 1)).ljust(cell))
        rows.append("".join(line).rstrip())
    return rows

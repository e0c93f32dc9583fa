"""One instance's sizing result: its curves, the calibration against the hit ratio measured now,
and the JSON of `cachetop sizing --json`."""

from __future__ import annotations

from dataclasses import dataclass, field

from cachetop.analysis.sizing.curve import Curve
from cachetop.analysis.sizing.memory import MemoryModel

# Predicted and measured hit ratio at the current size further apart than this (points) is said.
CALIBRATION_POINTS = 3.0

REDIS_POLICY = {
    "allkeys-lru": "redis-lru",
    "volatile-lru": "redis-lru",
    "allkeys-lfu": "redis-lfu",
    "volatile-lfu": "redis-lfu",
}


def compared_policies(current: str) -> list[str]:
    """The current policy first, then what else is worth comparing."""
    if current.startswith("redis-"):
        other = "redis-lfu" if current == "redis-lru" else "redis-lru"
        return [current, other, "s3fifo"]
    rest = [p for p in ("lru", "lfu", "s3fifo") if p != current]
    return [current, *rest]


@dataclass
class SizingReport:
    name: str
    policy: str  # the server's own name for it (allkeys-lru, memcached, trace)
    simulated_as: str  # the curve that models the server (simulate.POLICIES)
    memory_max_bytes: int
    hit_ratio_now: float | None
    curves: list[Curve]
    memory: MemoryModel
    rate: float
    sampled_reads: int = 0
    sampled_keys: int = 0
    reads_total: int = 0
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    cost: dict = field(default_factory=dict)
    ended_early: str = ""  # why the profile ended before its duration ("" when it ran it all)

    def unfilled_from(self) -> int | None:
        """The smallest size of the server's curve whose point is a lower bound (the trace was too
        short to warm a cache that large), or None when every point is trusted."""
        curve = self.current_curve()
        return next((p.memory_bytes for p in curve.points if not p.filled), None) if curve else None

    def current_curve(self) -> Curve | None:
        return next((c for c in self.curves if c.policy == self.simulated_as), None)

    @property
    def predicted_now(self) -> float | None:
        curve = self.current_curve()
        return curve.hit_ratio_at(self.memory_max_bytes) if curve else None

    def calibrate(self) -> None:
        """Adds a note when prediction and measurement disagree at the current size."""
        predicted, measured = self.predicted_now, self.hit_ratio_now
        if predicted is None or measured is None:
            return
        gap = predicted - measured
        if abs(gap) > CALIBRATION_POINTS:
            self.notes.append(
                f"calibration: at the current size the model predicts {predicted:.1f}% but the server "
                f"measured {measured:.1f}% over the same seconds ({gap:+.1f} points): read the curve "
                "with that much doubt"
            )

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "policy": self.policy,
            "simulated_as": self.simulated_as,
            "memory_max_bytes": self.memory_max_bytes,
            "hit_ratio_now": None if self.hit_ratio_now is None else round(self.hit_ratio_now, 2),
            "hit_ratio_predicted_now": None if self.predicted_now is None else round(self.predicted_now, 2),
            "curves": [c.to_json() for c in self.curves],
            "memory_model": {
                "bytes_per_object": round(self.memory.bytes_per_object, 1),
                "fixed_bytes": int(self.memory.fixed_bytes),
                "how": self.memory.how,
                "unit": self.memory.unit,
            },
            "sample": {
                "rate": self.rate,
                "sampled_reads": self.sampled_reads,
                "sampled_keys": self.sampled_keys,
                "reads_total": self.reads_total,
                "duration_s": round(self.duration_s, 2),
                "ended_early": self.ended_early or None,
            },
            "cost": self.cost,
            "notes": list(self.notes),
        }

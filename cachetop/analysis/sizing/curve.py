"""Hit-ratio curves from a sampled trace: memory 0.25x to 4x the current size, one per policy.

Each point simulates the sampled trace at capacity objects_at(memory) x rate. The first WARM_SHARE
of the trace only fills the simulated cache (the real one is warm); misses are counted after it and
turned into a hit ratio with the exact number of reads the stream had from the same point on:
hit ratio = 1 - misses / (reads from there x rate) (shards.py). A point whose simulated cache was
not full when counting began is flagged `filled: false`: the trace was too short for a cache that
large, its first accesses count as misses, and its hit ratio is a lower bound.

(Warming with the trace played backwards was tried and dropped: a key seen once in the trace then
finds itself cached, and hit ratios above the current size read 10-15 points high.)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from cachetop.analysis.sizing.memory import MemoryModel
from cachetop.analysis.sizing.shards import SampledTrace
from cachetop.analysis.sizing.simulate import POLICIES, sampled_misses

FACTORS = (0.25, 0.35, 0.5, 0.71, 1.0, 1.41, 2.0, 2.83, 4.0)
WARM_SHARE = 0.5


@dataclass(frozen=True)
class CurvePoint:
    memory_bytes: int
    hit_ratio: float  # percent
    objects: float  # what a cache of memory_bytes holds (memory.py)
    filled: bool = True


@dataclass(frozen=True)
class Curve:
    policy: str
    label: str
    points: tuple[CurvePoint, ...]

    def to_json(self) -> dict:
        return {
            "policy": self.policy,
            "label": self.label,
            "points": [
                {
                    "memory_bytes": p.memory_bytes,
                    "hit_ratio": round(p.hit_ratio, 2),
                    "objects": round(p.objects),
                    "filled": p.filled,
                }
                for p in self.points
            ],
        }

    def hit_ratio_at(self, memory_bytes: float) -> float | None:
        """Linear interpolation between points; None outside the curve."""
        pts = self.points
        for a, b in itertools.pairwise(pts):
            if a.memory_bytes <= memory_bytes <= b.memory_bytes:
                if b.memory_bytes == a.memory_bytes:
                    return a.hit_ratio
                w = (memory_bytes - a.memory_bytes) / (b.memory_bytes - a.memory_bytes)
                return a.hit_ratio + w * (b.hit_ratio - a.hit_ratio)
        if pts and memory_bytes == pts[-1].memory_bytes:
            return pts[-1].hit_ratio
        return None

    def memory_for(self, hit_ratio: float) -> float | None:
        """The least memory whose (interpolated) hit ratio reaches `hit_ratio` percent; None when
        no size on the curve reaches it."""
        pts = self.points
        if pts and pts[0].hit_ratio >= hit_ratio:
            return float(pts[0].memory_bytes)
        for a, b in itertools.pairwise(pts):
            if a.hit_ratio < hit_ratio <= b.hit_ratio:
                w = (hit_ratio - a.hit_ratio) / (b.hit_ratio - a.hit_ratio)
                return a.memory_bytes + w * (b.memory_bytes - a.memory_bytes)
        return None


def curve_from_json(data: dict) -> Curve:
    points = tuple(
        CurvePoint(
            int(p["memory_bytes"]),
            float(p["hit_ratio"]),
            float(p.get("objects", 0)),
            bool(p.get("filled", True)),
        )
        for p in data["points"]
    )
    return Curve(str(data["policy"]), str(data.get("label", data["policy"])), points)


@dataclass
class CurveRequest:
    current_bytes: int
    memory: MemoryModel
    policies: Sequence[str]
    factors: Sequence[float] = FACTORS
    samples: int = 5  # maxmemory-samples
    log_factor: int = 10  # lfu-log-factor
    decay_minutes: int = 1  # lfu-decay-time
    seed: int = 0
    warm_share: float = WARM_SHARE
    extra_bytes: Sequence[int] = field(default_factory=tuple)  # more points (e.g. a size asked about)


def build_curves(trace: SampledTrace, req: CurveRequest) -> list[Curve]:
    sizes = sorted({int(req.current_bytes * f) for f in req.factors} | {int(b) for b in req.extra_bytes})
    warm = int(len(trace.ids) * req.warm_share)
    expected = trace.reads_from(warm) * trace.rate
    objects = [req.memory.objects_at(b) for b in sizes]
    scaled = [o * trace.rate for o in objects]
    curves = []
    for policy in req.policies:
        misses = sampled_misses(
            trace,
            policy,
            scaled,
            by_size=req.memory.by_size,
            warm=warm,
            samples=req.samples,
            log_factor=req.log_factor,
            decay_minutes=req.decay_minutes,
            seed=req.seed,
        )
        points = []
        for b, o, (m, filled) in zip(sizes, objects, misses, strict=True):
            hr = 100.0 * (1.0 - m / expected) if expected > 0 else 0.0
            points.append(CurvePoint(b, min(100.0, max(0.0, hr)), o, filled))
        curves.append(Curve(policy, POLICIES[policy][1], tuple(points)))
    return curves

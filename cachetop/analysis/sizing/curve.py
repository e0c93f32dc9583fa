"""Hit-ratio curves from a sampled trace: memory 0.25x to 4x the current size, one per policy.

Each point simulates the sampled trace at capacity objects_at(memory) x rate. The first WARM_SHARE
of the trace only fills the simulated cache (the real one is warm); misses are counted after it and
turned into a hit ratio per frequency class of keys, weighed by the class's exact share of all
reads (Strata); without those counts, hit ratio = 1 - misses / (reads from there x rate)
(shards.py). A point is flagged `filled: false` when the trace was too short for a cache that
large: its simulated cache was not full when counting began, or the warm-up half of the trace
had fewer than MIN_WARM_READS_PER_OBJECT reads (of the whole stream) per object the cache holds.
A cache warmed on fewer reads is full but not yet in its steady state (its LRU order, its LFU
counters): keys first read in the counted half miss although a warm cache would hold many of
them, so such a hit ratio reads low and is a lower bound. Measured on captured acceptance traces
(Zipf 0.9, 300,000 keys; docs/sizing.md): 4 or more reads per object left the hit ratio within
1.5 points of the whole trace's, 2-3 made it read 2-4 points low, 1 made it read 8 points low.

(Warming with the trace played backwards was tried and dropped: a key seen once in the trace then
finds itself cached, and hit ratios above the current size read 10-15 points high.)
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from cachetop.analysis.sizing.memory import MemoryModel
from cachetop.analysis.sizing.shards import SampledTrace, read_bin
from cachetop.analysis.sizing.simulate import POLICIES, sampled_misses

FACTORS = (0.25, 0.35, 0.5, 0.71, 1.0, 1.41, 2.0, 2.83, 4.0)
WARM_SHARE = 0.5
# Reads of the whole stream in the warm-up per object a cache holds, below which its point is a
# lower bound (see above).
MIN_WARM_READS_PER_OBJECT = 4.0


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


@dataclass(frozen=True)
class Strata:
    """Post-stratification by how often a key is read. The stream's reads per frequency class
    are known exactly (every read is counted, kept or not); within a class the sample's miss
    ratio stands for the class, and the classes are weighed by their share of all reads. Keys
    read about equally often miss about equally often, so which keys the hash happened to keep
    matters far less than with one ratio for all (bench/sizing.py: the error at a 1% sample falls
    about threefold)."""

    shares: dict[int, float]  # class -> share of all reads
    bin_of: dict[int, int]  # kept key id -> class
    counted: Counter[int]  # class -> kept reads after the warm-up

    @staticmethod
    def of(trace: SampledTrace, warm: int) -> Strata | None:
        bins = trace.read_bins()
        total = sum(bins.values()) if bins else 0
        if not bins or total <= 0:
            return None
        bin_of = {kid: read_bin(n) for kid, n in Counter(trace.ids).items()}
        counted = Counter(bin_of[kid] for kid in trace.ids[warm:])
        return Strata({b: n / total for b, n in bins.items()}, bin_of, counted)

    def miss_ratio(self, by_key: Counter[int]) -> float:
        missed: Counter[int] = Counter()
        for kid, n in by_key.items():
            missed[self.bin_of[kid]] += n
        known = {b: missed[b] / n for b, n in self.counted.items() if n}
        if not known:
            return 1.0
        ratio = 0.0
        for b, share in self.shares.items():
            # A class the sample has no read of (the few hottest keys, often) takes the ratio of
            # the nearest class it has: neighbouring classes miss alike.
            near = b if b in known else min(known, key=lambda k: (abs(k - b), -k))
            ratio += share * known[near]
        return min(1.0, max(0.0, ratio))


def build_curves(trace: SampledTrace, req: CurveRequest) -> list[Curve]:
    sizes = sorted({int(req.current_bytes * f) for f in req.factors} | {int(b) for b in req.extra_bytes})
    warm = int(len(trace.ids) * req.warm_share)
    expected = trace.reads_from(warm) * trace.rate
    strata = Strata.of(trace, warm)
    objects = [req.memory.objects_at(b) for b in sizes]
    warm_reads = trace.reads_total - trace.reads_from(warm)  # reads_from is 0 past the end
    # objects_at counts bytes when the trace carries sizes: the cache then holds bytes / mean size
    per_object = (trace.mean_size() or 1.0) if req.memory.by_size else 1.0
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
        for b, o, sim in zip(sizes, objects, misses, strict=True):
            if strata is not None:
                hr = 100.0 * (1.0 - strata.miss_ratio(sim.by_key))
            else:
                hr = 100.0 * (1.0 - sim.misses / expected) if expected > 0 else 0.0
            filled = sim.filled and warm_reads >= MIN_WARM_READS_PER_OBJECT * o / per_object
            points.append(CurvePoint(b, min(100.0, max(0.0, hr)), o, filled))
        curves.append(Curve(policy, POLICIES[policy][1], tuple(points)))
    return curves

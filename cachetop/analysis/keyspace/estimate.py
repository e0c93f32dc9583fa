"""Per-prefix estimates from counted names and a stratified sample of keys, each with its 95% interval.

Within a prefix (a stratum) the sampled keys are a simple random sample of its N keys, so the
prefix's bytes are N * mean, with the finite-population variance N^2 (1 - n/N) s^2 / n. When the
walk stopped before the end, N itself is an estimate: the names counted are a random sample of the
keyspace (SCAN order follows the hash table, which scatters names), so N = total * c / m with a
binomial variance, and the two errors are added (delta method). When every key of a prefix was
sampled (or, for memcached, listed), the interval is zero: the figure is exact.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

Z95 = 1.96
TTL_BUCKETS = (("lt_1m", 60.0), ("lt_1h", 3600.0), ("lt_1d", 86400.0), ("longer", math.inf))
IDLE_BUCKETS = (
    ("lt_1m", 60.0),
    ("lt_1h", 3600.0),
    ("lt_1d", 86400.0),
    ("lt_1w", 604800.0),
    ("longer", math.inf),
)
IDLE_OVER = (3600, 86400, 604800)
BIG_PER_PREFIX = 3
RARE_SPREAD = 0.25  # how far a value the sample missed may be from the mean (see total_estimate)


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What the per-key calls said about one key. expires_at: absolute Unix time (s) or None."""

    key: bytes
    bytes: int
    type: str
    encoding: str | None = None
    expires_at: float | None = None
    ttl_s: float | None = None
    idle_s: float | None = None
    freq: int | None = None


@dataclass(frozen=True, slots=True)
class Interval:
    est: float
    half: float  # 95% half-width; 0 when exact

    def to_json(self) -> list[float]:
        return [round(max(0.0, self.est - self.half), 1), round(self.est + self.half, 1)]


@dataclass
class PrefixEstimate:
    prefix: bytes
    keys: Interval
    bytes: Interval
    sampled: int
    mean_bytes: float
    max_bytes: int
    ttl: dict[str, float]
    idle: dict[str, float] | None
    freq: dict[str, float] | None
    encodings: dict[str, float]
    types: dict[str, float]
    biggest: list[KeyFacts]
    exact: bool
    compress: dict[str, object] | None = None
    idle_over: dict[int, tuple[Interval, Interval]] = field(default_factory=dict)


def count_estimate(counted: int, scanned: int, total: int | None) -> Interval:
    """A prefix's key count: exact when the whole keyspace was walked (scanned >= total), else
    scaled from the scanned share with a binomial, finite-population variance."""
    if total is None or scanned >= total or scanned == 0:
        return Interval(float(counted), 0.0)
    p = counted / scanned
    fpc = 1.0 - scanned / total
    var = total**2 * fpc * p * (1.0 - p) / max(1, scanned - 1)
    return Interval(total * p, Z95 * math.sqrt(var))


def mean_estimate(values: Sequence[float], population: float) -> tuple[float, float]:
    """(mean, variance of the mean) of a simple random sample from a population of that size."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0
    mean = sum(values) / n
    if n == 1 or n >= population:
        return mean, 0.0
    s2 = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, (1.0 - n / population) * s2 / n


def total_estimate(keys: Interval, values: Sequence[float]) -> Interval:
    """keys * mean(values), with both errors added (delta method).

    A sample in which (nearly) every value is the same says little about rare values it missed:
    by the rule of three, up to 3/n of the keys may differ from all n sampled ones, so the
    interval is at least that many keys times a quarter of the mean (an allocator size class)."""
    mean, var_mean = mean_estimate(values, keys.est)
    var_keys = (keys.half / Z95) ** 2
    var = keys.est**2 * var_mean + mean**2 * var_keys
    half = Z95 * math.sqrt(var)
    n = len(values)
    if 0 < n < keys.est:
        half = max(half, keys.est * min(1.0, 3.0 / n) * RARE_SPREAD * abs(mean))
    return Interval(keys.est * mean, half)


def shares(values: Sequence[str], keys: float) -> dict[str, float]:
    """Each label's estimated key count: its share of the sample times the prefix's keys."""
    n = len(values)
    return {label: keys * c / n for label, c in Counter(values).most_common()} if n else {}


def bucket(seconds: float | None, buckets: tuple[tuple[str, float], ...], none: str | None) -> str:
    if seconds is None:
        return none or "none"
    return next(name for name, upper in buckets if seconds < upper)


def estimate_prefix(
    prefix: bytes, counted: int, scanned: int, total: int | None, facts: Sequence[KeyFacts]
) -> PrefixEstimate:
    keys = count_estimate(counted, scanned, total)
    sizes = [float(f.bytes) for f in facts]
    bytes_ = total_estimate(keys, sizes)
    exact = keys.half == 0 and len(facts) >= counted
    ttl_labels = [bucket(f.ttl_s, TTL_BUCKETS, "none") for f in facts]
    ttl = {name: 0.0 for name in ("none", *(b[0] for b in TTL_BUCKETS))}
    ttl.update(shares(ttl_labels, keys.est))
    idle = freq = None
    if any(f.idle_s is not None for f in facts):
        idle = {name: 0.0 for name, _ in IDLE_BUCKETS}
        idle.update(
            shares([bucket(f.idle_s, IDLE_BUCKETS, None) for f in facts if f.idle_s is not None], keys.est)
        )
    if any(f.freq is not None for f in facts):
        labels = [_freq_label(f.freq) for f in facts if f.freq is not None]
        freq = shares(labels, keys.est)
    idle_over = {}
    with_idle = [f for f in facts if f.idle_s is not None]
    for over in IDLE_OVER if with_idle else ():
        flags = [1.0 if (f.idle_s or 0) > over else 0.0 for f in with_idle]
        idle_bytes = [float(f.bytes) if (f.idle_s or 0) > over else 0.0 for f in with_idle]
        idle_over[over] = (total_estimate(keys, flags), total_estimate(keys, idle_bytes))
    return PrefixEstimate(
        prefix=prefix,
        keys=keys,
        bytes=bytes_,
        sampled=len(facts),
        mean_bytes=sum(sizes) / len(sizes) if sizes else 0.0,
        max_bytes=int(max(sizes)) if sizes else 0,
        ttl=ttl,
        idle=idle,
        freq=freq,
        encodings=shares([f.encoding or "?" for f in facts], keys.est),
        types=shares([f.type for f in facts], keys.est),
        biggest=heapq.nlargest(BIG_PER_PREFIX, facts, key=lambda f: f.bytes),
        exact=exact,
        idle_over=idle_over,
    )


def _freq_label(freq: int | None) -> str:
    """LFU counters are logarithmic (0..255); a new key starts at 5 and decays below it unused."""
    f = freq or 0
    return "0-4" if f < 5 else "5" if f == 5 else "6-15" if f <= 15 else "16-63" if f <= 63 else "64-255"


def idle_totals(prefixes: Sequence[PrefixEstimate]) -> list[dict[str, object]]:
    """Keys and bytes idle over 1 h, 1 d and 1 w, summed over the prefixes (variances added)."""
    out = []
    if not any(p.idle_over for p in prefixes):
        return out
    for over in IDLE_OVER:
        parts = [p.idle_over[over] for p in prefixes if over in p.idle_over]
        keys = _sum([k for k, _ in parts])
        bytes_ = _sum([b for _, b in parts])
        out.append(
            {
                "over_s": over,
                "keys_est": round(keys.est),
                "bytes_est": round(bytes_.est),
                "keys_ci95": keys.to_json(),
                "bytes_ci95": bytes_.to_json(),
            }
        )
    return out


def _sum(parts: Sequence[Interval]) -> Interval:
    return Interval(sum(p.est for p in parts), math.sqrt(sum(p.half**2 for p in parts)))

"""Expiry cliffs: seconds in which far more keys expire than on average.

Each sampled key with a TTL stands for N_h / n_h keys of its prefix (the inverse of its chance of
being sampled), so the keys expiring in a given second are estimated by adding those weights. A
second is a cliff when its estimate is at least CLIFF_FACTOR times the average over the span in
which the sampled keys expire, rests on at least MIN_SAMPLED sampled keys (one key of a large,
thinly sampled prefix weighs hundreds and must not look like a cliff on its own) and is at least
MIN_KEYS keys. A deadline that falls on a second's edge is split between two seconds by clock
reading; a cliff therefore takes in its neighbours when they are above the average too.

Redis expires keys in small sampled cycles, so a cliff also expires late and in a burst; the
advice is TTL jitter (spread the deadline over a share of the TTL) or XFetch (refresh early with a
probability that grows as the deadline nears: recompute when now - delta * beta * ln(rand()) >=
expiry, with delta the time a recompute takes and beta 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cachetop.analysis.keyspace.estimate import Z95

CLIFF_FACTOR = 10.0
MIN_SAMPLED = 5
MIN_KEYS = 100
MAX_CLIFFS = 10
PREFIX_SHARE = 0.1  # a prefix is named in a cliff when it holds this share of its keys
JITTER = 0.15
DEFAULT_HORIZON_S = 3600.0


@dataclass(frozen=True, slots=True)
class Expiry:
    """One sampled key's deadline, with the weight it carries and its prefix's sample size."""

    at: float
    prefix: bytes
    weight: float  # N_h / n_h
    stratum_keys: float  # N_h
    stratum_sampled: int  # n_h


@dataclass(frozen=True, slots=True)
class Cliff:
    at: int
    keys_est: float
    keys_half: float
    sampled: int
    prefixes: tuple[tuple[bytes, float], ...]  # (prefix, estimated keys), largest first
    mean_per_s: float
    ttl_left_s: float

    def advice(self) -> str:
        spread = max(1.0, 2 * JITTER * self.ttl_left_s)
        per_s = self.keys_est / spread
        times = self.keys_est / max(self.mean_per_s, 1e-9)
        return (
            f"{self.keys_est:,.0f} keys expire in one second ({times:,.0f}x "
            f"the average {self.mean_per_s:,.1f}/s); a TTL jitter of ±{JITTER:.0%} would spread them over "
            f"{spread:,.0f} s (about {per_s:,.1f}/s), or refresh them early with XFetch "
            "(recompute when now - delta * ln(rand()) >= expiry; delta = the time one recompute takes)"
        )


def find_cliffs(expiries: Sequence[Expiry], now: float) -> list[Cliff]:
    """The cliffs among the sampled deadlines after `now`, largest first."""
    future = [e for e in expiries if e.at >= now]
    if not future:
        return []
    per_second: dict[int, list[Expiry]] = {}
    for e in future:
        per_second.setdefault(math.floor(e.at), []).append(e)
    total = sum(e.weight for e in future)
    last = max(per_second)
    span = max(60.0, last + 1 - now)
    mean = total / span
    threshold = max(CLIFF_FACTOR * mean, MIN_KEYS)
    weight = {s: sum(e.weight for e in group) for s, group in per_second.items()}
    hot = [s for s, w in weight.items() if w >= threshold]
    cliffs: list[Cliff] = []
    used: set[int] = set()
    for second in sorted(hot, key=lambda s: -weight[s]):
        if second in used:
            continue
        run = [second]
        for neighbour in (second - 1, second + 1):
            if neighbour not in used and weight.get(neighbour, 0.0) > mean * 2:
                run.append(neighbour)
        members = [e for s in run for e in per_second[s]]
        if len(members) < MIN_SAMPLED:
            continue
        used.update(run)
        keys_est, half = _weighted_count(members)
        if keys_est < threshold:
            continue
        by_prefix: dict[bytes, float] = {}
        for e in members:
            by_prefix[e.prefix] = by_prefix.get(e.prefix, 0.0) + e.weight
        # Named are the prefixes that make the cliff, not those whose usual trickle falls in it.
        ranked = sorted(by_prefix.items(), key=lambda kv: -kv[1])
        named = [kv for kv in ranked if kv[1] >= PREFIX_SHARE * keys_est] or ranked[:1]
        cliffs.append(
            Cliff(
                at=second,
                keys_est=keys_est,
                keys_half=half,
                sampled=len(members),
                prefixes=tuple(named),
                mean_per_s=mean,
                ttl_left_s=second - now,
            )
        )
    cliffs.sort(key=lambda c: -c.keys_est)
    return cliffs[:MAX_CLIFFS]


def _weighted_count(members: Iterable[Expiry]) -> tuple[float, float]:
    """Estimated keys and the 95% half-width: per prefix, N_h * m_h / n_h with a binomial variance."""
    groups: dict[bytes, list[Expiry]] = {}
    for e in members:
        groups.setdefault(e.prefix, []).append(e)
    est = var = 0.0
    for group in groups.values():
        n_total, n = group[0].stratum_keys, max(1, group[0].stratum_sampled)
        p = len(group) / n
        est += n_total * p
        if n < n_total:
            var += n_total**2 * (1 - n / n_total) * p * (1 - p) / max(1, n - 1)
    return est, Z95 * math.sqrt(var)


def cliff_json(cliff: Cliff, display: Any) -> dict[str, object]:
    return {
        "at": cliff.at,
        "keys_est": round(cliff.keys_est),
        "keys_ci95": [
            round(max(0.0, cliff.keys_est - cliff.keys_half)),
            round(cliff.keys_est + cliff.keys_half),
        ],
        "prefixes": [display(p) for p, _ in cliff.prefixes],
        "prefix_keys_est": {display(p): round(k) for p, k in cliff.prefixes},
        "sampled": cliff.sampled,
        "advice": cliff.advice(),
    }


def largest_cliff(report: Mapping[str, Any], now: float, horizon_s: float = DEFAULT_HORIZON_S) -> float:
    """`expiry_cliff_keys`: the most keys of one cliff due in [now, now + horizon), from a report's
    JSON (one element of "instances"); 0 when none is due."""
    best = 0.0
    for cliff in report.get("cliffs") or ():
        try:
            at, keys = float(cliff["at"]), float(cliff["keys_est"])
        except (KeyError, TypeError, ValueError):
            continue
        if now - 1 <= at < now + horizon_s:
            best = max(best, keys)
    return best

"""Which keys will be hot in a coming time bucket: seasonal, sequence (Markov), their blend, and a baseline.

Each bucket of history holds its top keys and top prefixes with their sampled counts. A bucket
becomes a distribution by shares (count / sum of counts). The predictors:

* **seasonal**: the same bucket of earlier seasons (yesterday's 14:00 for today's 14:00), the most
  recent season weighted most (each season back counts `decay` times the one after it);
* **sequence**: a first-order Markov chain whose states are keys (and, beside it, prefixes). A
  transition j -> k is counted, weighted by share(j) * share(k), for every pair of consecutive
  buckets in history; P(k | j) is that count over j's total. The chain is never built as a
  matrix: with c the current bucket's shares, sum_j c_j P(k | j) = sum_t b_t(k) * sum_j c_j a_t(j) / A(j)
  over the transitions t (a_t: shares before, b_t: shares after, A(j) = sum_t a_t(j)), which costs
  O(transitions x keys kept per bucket). The prefix chain predicts namespaces; a predicted
  namespace lends its weight to the keys it held the last time it was seen, so a namespace that
  comes back with the same keys is predicted even where no key-level transition was seen;
* **combined**: the two blended, each weighted by how well it did lately (its recent precision@k);
* **naive**: the baseline, "the hot keys of the last bucket".

`precision_at_k` scores a prediction against what then happened: the share of the bucket's real
top k (by count) that the prediction's top k named. Pure: numbers in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

Scores = dict[bytes, float]
PREDICTORS = ("combined", "seasonal", "sequence", "naive")


class BucketTop(Protocol):
    """One bucket of history: its index (time // bucket seconds) and top lists, most first."""

    @property
    def index(self) -> int: ...

    @property
    def keys(self) -> Sequence[tuple[bytes, int]]: ...

    @property
    def prefixes(self) -> Sequence[tuple[bytes, int]]: ...


@dataclass(frozen=True, slots=True)
class Top:
    """A plain BucketTop (tests, and a partial bucket still being counted)."""

    index: int
    keys: Sequence[tuple[bytes, int]] = ()
    prefixes: Sequence[tuple[bytes, int]] = ()


def shares(counts: Iterable[tuple[bytes, int]]) -> Scores:
    pairs = [(k, c) for k, c in counts if c > 0]
    total = sum(c for _, c in pairs)
    return {k: c / total for k, c in pairs} if total else {}


def ranked(scores: Mapping[bytes, float], k: int | None = None) -> list[bytes]:
    """Keys by score, highest first (ties by key, so the order is stable)."""
    order = sorted(scores, key=lambda key: (-scores[key], key))
    return order if k is None else order[:k]


def precision_at_k(predicted: Sequence[bytes], actual: Sequence[bytes], k: int) -> float | None:
    """The share of the real top k that the predicted top k named; None when nothing happened."""
    real = list(actual)[:k]
    if not real:
        return None
    return len(set(predicted[:k]) & set(real)) / len(real)


def _add(into: Scores, scores: Mapping[bytes, float], weight: float) -> None:
    for key, value in scores.items():
        into[key] = into.get(key, 0.0) + weight * value


def seasonal(
    history: Mapping[int, BucketTop], target: int, season: int, *, seasons: int = 4, decay: float = 0.5
) -> Scores:
    """The same bucket of up to `seasons` earlier seasons, the most recent counting most."""
    out: Scores = {}
    weights = 0.0
    for back in range(1, seasons + 1):
        past = history.get(target - back * season)
        if past is None:
            continue
        weight = decay ** (back - 1)
        _add(out, shares(past.keys), weight)
        weights += weight
    return {k: v / weights for k, v in out.items()} if weights else {}


class Chain:
    """A first-order Markov chain over the states of consecutive buckets (keys or prefixes)."""

    def __init__(self, transitions: Sequence[tuple[Scores, Scores]]) -> None:
        self.transitions = transitions
        self.totals: Scores = {}  # A(j): how much j was seen as a "before" state
        for before, _ in transitions:
            _add(self.totals, before, 1.0)

    @classmethod
    def learn(cls, history: Mapping[int, BucketTop], what: Callable[[BucketTop], Scores]) -> Chain:
        pairs = [(what(history[i]), what(history[i + 1])) for i in sorted(history) if i + 1 in history]
        return cls(pairs)

    def step(self, current: Mapping[bytes, float]) -> Scores:
        out: Scores = {}
        for before, after in self.transitions:
            alpha = sum(c * before[j] / self.totals[j] for j, c in current.items() if j in before)
            if alpha > 0:
                _add(out, after, alpha)
        total = sum(out.values())
        return {k: v / total for k, v in out.items()} if total else {}


def _key_shares(b: BucketTop) -> Scores:
    return shares(b.keys)


def _prefix_shares(b: BucketTop) -> Scores:
    return shares(b.prefixes)


def sequence(
    history: Mapping[int, BucketTop],
    current: BucketTop,
    target: int,
    rollup: Callable[[bytes], bytes],
    max_steps: int = 24,
) -> Scores:
    """The key chain and the prefix chain stepped from `current` to `target`, half and half.
    Nothing when `current` is more than `max_steps` buckets back (history that stopped days ago
    says nothing about the next hour's sequence; the season still does)."""
    steps = max(1, target - current.index)
    if steps > max_steps:
        return {}
    keys: Scores = _key_shares(current)
    prefixes: Scores = _prefix_shares(current)
    key_chain = Chain.learn(history, _key_shares)
    prefix_chain = Chain.learn(history, _prefix_shares)
    for _ in range(steps):
        keys = key_chain.step(keys)
        prefixes = prefix_chain.step(prefixes)
    from_prefixes = _spread(prefixes, history, rollup)
    out: Scores = {}
    parts = [s for s in (keys, from_prefixes) if s]
    for part in parts:
        _add(out, part, 1.0 / len(parts))
    return out


def _spread(
    prefixes: Mapping[bytes, float], history: Mapping[int, BucketTop], rollup: Callable[[bytes], bytes]
) -> Scores:
    """A predicted namespace's weight, shared by the keys it held the last time it was strong: the
    most recent bucket in which its count reached half its best in the history read. (Its leftovers
    in the bucket after, or a trickle, do not show which of its keys are read when it is hot.)"""
    wanted = {p: w for p, w in prefixes.items() if w > 0}
    best: dict[bytes, int] = {}
    for record in history.values():
        for pattern, count in record.prefixes:
            if pattern in wanted and count > best.get(pattern, 0):
                best[pattern] = count
    out: Scores = {}
    for index in sorted(history, reverse=True):
        if not wanted:
            break
        record = history[index]
        strong = {p for p, c in record.prefixes if p in wanted and 2 * c >= best.get(p, 0)}
        if not strong:
            continue
        held: dict[bytes, list[tuple[bytes, int]]] = {}
        for key, count in record.keys:
            pattern = rollup(key)
            if pattern in strong:
                held.setdefault(pattern, []).append((key, count))
        for pattern, keys in held.items():
            _add(out, shares(keys), wanted.pop(pattern))
    return out


def sequence_now(
    history: Mapping[int, BucketTop],
    current: BucketTop | None,
    target: int,
    rollup: Callable[[bytes], bytes],
    season: int,
    seen: float,
) -> Scores:
    """The chain stepped from where things stand: a bucket still being counted speaks for "now"
    in proportion to how much of it has been seen; the closed bucket before it (one step further
    from the target) speaks for the rest. Early in a bucket, its first seconds say little."""
    if current is None:
        return {}
    now = sequence(history, current, target, rollup, max_steps=season)
    before = history.get(current.index - 1)
    seen = min(max(seen, 0.0), 1.0)
    if seen >= 1.0 or before is None or current.index in history:
        return now
    earlier = sequence(history, before, target, rollup, max_steps=season)
    out: Scores = {}
    for part, weight in ((now, seen), (earlier, 1.0 - seen)):
        _add(out, part, weight)
    total = sum(out.values())
    return {k: v / total for k, v in out.items()} if total else {}


def naive(last: BucketTop | None) -> Scores:
    return shares(last.keys) if last is not None else {}


@dataclass(frozen=True, slots=True)
class Prediction:
    target: int  # the bucket index predicted
    scores: Mapping[str, Scores]  # per predictor (PREDICTORS)
    weights: tuple[float, float]  # (seasonal, sequence) in the blend

    def top(self, predictor: str, k: int) -> list[bytes]:
        return ranked(self.scores.get(predictor, {}), k)


BLEND_SHARPNESS = 8.0  # a predictor 0.1 more precise lately weighs e^0.8 = 2.2 times as much


def blend_weights(recent: Mapping[str, Sequence[float]]) -> tuple[float, float]:
    """(seasonal, sequence): exp(BLEND_SHARPNESS * mean recent precision), normalised. Equal
    records (or none yet) weigh half and half; the one that has been right lately leads, and
    the other still counts a little, so it can earn its way back when the traffic changes."""

    def score(name: str) -> float:
        values = recent.get(name) or ()
        return math.exp(BLEND_SHARPNESS * (sum(values) / len(values) if values else 0.5))

    s, q = score("seasonal"), score("sequence")
    return s / (s + q), q / (s + q)


def predict(
    history: Mapping[int, BucketTop],
    current: BucketTop | None,
    target: int,
    season: int,
    *,
    rollup: Callable[[bytes], bytes],
    recent: Mapping[str, Sequence[float]] | None = None,
    seen: float = 1.0,
) -> Prediction:
    """Scores for bucket `target` from closed buckets (`history`, by index) and the latest state
    (`current`: the bucket being counted, or the last closed one). `seen`: the share of a
    current bucket still being counted that has been seen so far (see `sequence_now`)."""
    seas = seasonal(history, target, season)
    seq = sequence_now(history, current, target, rollup, season, seen)
    w_seas, w_seq = blend_weights(recent or {})
    combined: Scores = {}
    if seas and seq:
        _add(combined, seas, w_seas)
        _add(combined, seq, w_seq)
    else:
        combined = dict(seas or seq)
    return Prediction(
        target=target,
        scores={"combined": combined, "seasonal": seas, "sequence": seq, "naive": naive(current)},
        weights=(w_seas, w_seq),
    )

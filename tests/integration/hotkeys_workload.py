"""A deterministic hot-key workload: hot:1 takes 30% of the traffic, 1000 other keys share the
rest with Zipf(1.0) popularity. Exact counts come from the generated sequence itself."""

from __future__ import annotations

import random
from collections import Counter


def workload(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    others = [f"item:{i}".encode() for i in range(1000)]
    weights = [1 / (i + 1) for i in range(len(others))]
    tail = rng.choices(others, weights, k=n)
    return [b"hot:1" if rng.random() < 0.3 else tail[i] for i in range(n)]


def precision_at(ranked: list[bytes], exact: Counter[bytes], k: int = 10) -> float:
    truth = {key for key, _ in exact.most_common(k)}
    return len(truth & set(ranked[:k])) / k

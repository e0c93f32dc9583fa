"""History's CPU cost against the hot-key sampler's own, in the same run.

History adds each finished one-second slot of the hot-key collector (a Space-Saving summary of up
to 1,000 keys) into the open bucket's summary. The reference is what the collector itself spends
putting the same slot's counts into its summary. Both are pure Python on the event loop; the
ratio says how much history adds to the sampling work that is already there (the MONITOR line
parsing, which costs far more, is not in the reference). Also: the store's write of a closed
bucket (200 keys) and the prediction of the next one from four seasons of hourly buckets.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from cachetop.analysis.predict import predict
from cachetop.history.bucket import BucketRecord, OpenBucket
from cachetop.history.config import HistorySettings
from cachetop.history.store import HistoryStore
from cachetop.metrics.prefix import PrefixRoller
from cachetop.metrics.topk import SpaceSaving

ROUNDS = 7
SLOTS = 30


def slots(rng: random.Random) -> list[dict[bytes, list[int]]]:
    out = []
    for _ in range(SLOTS):
        summary = SpaceSaving(1000)
        for n in range(3000):
            summary.add(f"user:{rng.randrange(20_000)}:cart".encode(), 1 + n % 5)
        out.append(summary.entries)
    return out


def history_ms(data: list[dict[bytes, list[int]]]) -> float:
    bucket = OpenBucket("a", 1, 3600.0, 200)
    start = time.perf_counter()
    for entries in data:
        bucket.add_slot(entries, {}, 1.0)
    return (time.perf_counter() - start) * 1000 / len(data)


def collector_ms(data: list[dict[bytes, list[int]]]) -> float:
    start = time.perf_counter()
    for entries in data:
        summary = SpaceSaving(1000)
        for key, e in entries.items():
            summary.add(key, e[0], e[2], e[3], e[4], e[5])
    return (time.perf_counter() - start) * 1000 / len(data)


def store_and_predict_ms(rng: random.Random) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = HistorySettings()
        store = HistoryStore(Path(tmp), settings, clock=lambda: 500_000 * 3600.0)
        records = []
        for index in range(500_000 - 96, 500_000):
            keys = tuple((f"user:{rng.randrange(10**6)}:cart".encode(), 1000 - n) for n in range(200))
            records.append(BucketRecord("a", index, 3600.0, keys, ((b"user:*:cart", 10**5),), {"hits": 1.0}))
        start = time.perf_counter()
        for record in records:
            store.add(record)
        write = (time.perf_counter() - start) * 1000 / len(records)
        history = store.buckets("a", 3600.0)
        start = time.perf_counter()
        predict(history, history[max(history)], max(history) + 1, 24, rollup=PrefixRoller().rollup)
        guess = (time.perf_counter() - start) * 1000
        store.close()
    return write, guess


def main() -> None:
    rng = random.Random(17)
    data = slots(rng)
    ours, reference = [], []
    for _ in range(ROUNDS):
        reference.append(collector_ms(data))
        ours.append(history_ms(data))
    h, c = statistics.median(ours), statistics.median(reference)
    print(
        f"per full slot (1,000 keys): history {h:.2f} ms, collector's own summary {c:.2f} ms,"
        f" ratio {h / c:.2f}"
    )
    write, guess = store_and_predict_ms(rng)
    print(f"closed bucket written (200 keys, one transaction and its size check): {write:.2f} ms (mean)")
    print(f"next-bucket prediction from 96 hourly buckets of 200 keys: {guess:.1f} ms")


if __name__ == "__main__":
    main()

import random
from collections import Counter

import pytest

from cachetop.metrics.topk import SpaceSaving, WindowedTopK


def test_space_saving_is_exact_below_capacity() -> None:
    ss = SpaceSaving(10)
    for key, n in [(b"a", 5), (b"b", 3), (b"a", 2), (b"c", 1)]:
        ss.add(key, n)
    assert {k: e[0] for k, e in ss.entries.items()} == {b"a": 7, b"b": 3, b"c": 1}
    assert ss.total == 11
    assert ss.min_count() == 0


def test_space_saving_new_key_takes_over_the_smallest_counter() -> None:
    ss = SpaceSaving(2)
    ss.add(b"a", 5)
    ss.add(b"b", 2)
    ss.add(b"a", 1)  # a: 6, b: 2
    ss.add(b"c", 1)  # evicts b, c inherits 2 as error
    assert set(ss.entries) == {b"a", b"c"}
    assert ss.entries[b"c"][:2] == [3, 2]
    assert ss.entries[b"a"][:2] == [6, 0]
    assert ss.min_count() == 3


def test_space_saving_never_underestimates_and_bounds_memory() -> None:
    rng = random.Random(7)
    keys = [f"k{i}".encode() for i in range(5000)]
    weights = [1 / (i + 1) for i in range(len(keys))]
    stream = rng.choices(keys, weights, k=50_000)
    exact = Counter(stream)
    ss = SpaceSaving(200)
    for key in stream:
        ss.add(key)
    assert len(ss.entries) == 200
    for key, entry in ss.entries.items():
        assert entry[0] >= exact[key]
        assert entry[0] - entry[1] <= exact[key]
    top20 = {k for k, _ in exact.most_common(20)}
    got = {k for k, _ in sorted(ss.entries.items(), key=lambda kv: -kv[1][0])[:20]}
    assert len(top20 & got) >= 18


def test_windowed_topk_rates_shares_and_read_write_split() -> None:
    w = WindowedTopK(k=3, capacity=10, window_s=10, slot_s=1)
    w.add(100.2, b"hot", 30, reads=20, writes=10)
    w.add(100.5, b"cold", 10, reads=10)
    w.cover(100.9, 0.5)
    res = w.top(101.0)
    assert [k.key for k in res.keys] == [b"hot", b"cold"]
    hot = res.keys[0]
    assert (hot.count, hot.reads, hot.writes) == (30, 20, 10)
    assert hot.share == pytest.approx(0.75)
    assert hot.ops_per_sec == pytest.approx(60.0)  # 30 events in 0.5 s observed
    assert res.total == 40


def test_windowed_topk_forgets_traffic_older_than_the_window() -> None:
    w = WindowedTopK(k=5, capacity=10, window_s=3, slot_s=1)
    w.add(10.0, b"old", 100)
    w.cover(10.5, 1)
    w.add(12.0, b"new", 5)
    w.cover(12.5, 1)
    assert [k.key for k in w.top(12.9).keys] == [b"old", b"new"]
    res = w.top(13.5)  # slot 10 is now older than 3 s
    assert [k.key for k in res.keys] == [b"new"]
    assert res.total == 5


def test_windowed_topk_merges_counts_across_slots() -> None:
    w = WindowedTopK(k=2, capacity=4, window_s=10, slot_s=1)
    for t in range(5):
        w.add(float(t), b"a", 2)
        w.add(float(t), b"b", 3 if t < 2 else 1)
        w.cover(t + 0.99, 1)
    res = w.top(4.99)
    assert [(k.key, k.count) for k in res.keys] == [(b"a", 10), (b"b", 9)]
    assert res.covered_s == pytest.approx(5.0)


def test_history_holds_rates_of_observed_slots_only() -> None:
    w = WindowedTopK(k=2, capacity=4, window_s=10, slot_s=1, history_len=3)
    w.add(0.1, b"a", 10)
    w.cover(0.9, 0.5)  # 20/s
    # slot 1: nothing observed (duty cycle off), slot 2: 4 events in 1 s
    w.add(2.1, b"a", 4)
    w.cover(2.9, 1)
    res = w.top(3.0)
    assert res.keys[0].history == (20.0, 4.0)


def test_batch_add_equals_single_adds() -> None:
    a = WindowedTopK(k=3, capacity=3)
    b = WindowedTopK(k=3, capacity=3)
    for key, n in [(b"x", 3), (b"y", 2), (b"z", 1)]:
        for _ in range(n):
            a.add(1.0, key, reads=1)
    b.add_batch(1.0, {b"x": (3, 3, 0, 0, 0), b"y": (2, 2, 0, 0, 0), b"z": (1, 1, 0, 0, 0)})
    assert a.top(1.5) == b.top(1.5)

"""Next-bucket prediction and trends: plain numbers in, exact numbers out."""

from __future__ import annotations

import math

import pytest

from cachetop.analysis.predict import (
    Chain,
    Top,
    blend_weights,
    precision_at_k,
    predict,
    ranked,
    seasonal,
    sequence,
    shares,
)
from cachetop.analysis.trends import bar_chart, changes, hit_ratio_by_phase
from cachetop.history.bucket import BucketRecord
from cachetop.metrics.prefix import rollup


def top(index: int, *keys: tuple[str, int], prefixes: tuple[tuple[str, int], ...] = ()) -> Top:
    return Top(index, tuple((k.encode(), c) for k, c in keys), tuple((p.encode(), c) for p, c in prefixes))


def test_precision_at_k_is_the_share_of_the_real_top_k_named() -> None:
    assert precision_at_k([b"a", b"b", b"c"], [b"b", b"x", b"a"], 3) == pytest.approx(2 / 3)
    assert precision_at_k([b"a"], [b"a", b"b"], 1) == 1.0
    # fewer real keys than k: the denominator is what happened
    assert precision_at_k([b"a", b"b", b"c", b"d"], [b"d", b"a"], 4) == 1.0
    assert precision_at_k([b"a"], [], 10) is None


def test_seasonal_weighs_the_most_recent_season_twice_the_one_before() -> None:
    history = {2: top(2, ("old", 10)), 6: top(6, ("new", 10))}  # season 4: buckets 2 and 6 -> 10
    scores = seasonal(history, 10, 4)
    assert scores == pytest.approx({b"new": 2 / 3, b"old": 1 / 3})
    assert ranked(scores) == [b"new", b"old"]
    assert seasonal(history, 11, 4) == {}


def test_the_chain_steps_each_key_to_what_followed_it() -> None:
    # a -> b twice, a -> c once (weighted by shares), b -> d
    history = {
        1: top(1, ("a", 1)),
        2: top(2, ("b", 1)),
        5: top(5, ("a", 1)),
        6: top(6, ("b", 1), ("c", 1)),
        8: top(8, ("b", 1)),
        9: top(9, ("d", 1)),
    }
    chain = Chain.learn(history, lambda t: shares(t.keys))
    assert len(chain.transitions) == 3
    step = chain.step({b"a": 1.0})
    # P(b|a) = (1*1 + 1*0.5) / 2 = 0.75, P(c|a) = 0.25
    assert step == pytest.approx({b"b": 0.75, b"c": 0.25})
    assert chain.step({b"b": 1.0}) == pytest.approx({b"d": 1.0})
    assert chain.step({b"zzz": 1.0}) == {}


def test_sequence_uses_prefixes_for_keys_the_key_chain_never_saw_follow() -> None:
    # the cart namespace always follows home; its keys change ids, the namespace does not
    history = {
        1: top(1, ("home:1", 5), prefixes=(("home:*", 5),)),
        2: top(2, ("cart:7", 5), prefixes=(("cart:*", 5),)),
    }
    current = top(3, ("home:2", 5), prefixes=(("home:*", 5),))  # home:2 never seen before
    scores = sequence(history, current, 4, rollup)
    assert scores == pytest.approx({b"cart:7": 1.0})


def test_blend_leans_on_the_predictor_that_was_right_lately() -> None:
    assert blend_weights({}) == pytest.approx((0.5, 0.5))
    w_seas, w_seq = blend_weights({"seasonal": [0.9, 0.9], "sequence": [0.5]})
    assert w_seas == pytest.approx(math.exp(7.2) / (math.exp(7.2) + math.exp(4.0)))
    assert w_seas + w_seq == pytest.approx(1.0)


def test_a_daily_cycle_is_predicted_exactly_and_the_naive_baseline_misses_it() -> None:
    pages = ("home", "search", "cart", "checkout")
    history = {}
    for index in range(8, 16):  # two seasons of 4 buckets
        page = pages[index % 4]
        keys = tuple((f"page:{page}:{n}", 10 + n % 3) for n in range(20))
        history[index] = top(index, *keys, prefixes=((f"page:{page}:*", 200),))
    prediction = predict(history, history[15], 16, 4, rollup=rollup)
    actual = [f"page:home:{n}".encode() for n in range(20)]
    assert precision_at_k(prediction.top("seasonal", 20), actual, 20) == 1.0
    assert precision_at_k(prediction.top("sequence", 20), actual, 20) == 1.0
    assert precision_at_k(prediction.top("combined", 20), actual, 20) == 1.0
    assert precision_at_k(prediction.top("naive", 20), actual, 20) == 0.0
    # two buckets ahead: the chain steps twice, the season looks at the bucket itself
    later = predict(history, history[15], 17, 4, rollup=rollup)
    assert set(later.top("combined", 20)) == {f"page:search:{n}".encode() for n in range(20)}


def test_trends_changes_and_hit_ratio_by_phase() -> None:
    now = ((b"a", 5), (b"b", 3), (b"c", 1))
    then = ((b"b", 9), (b"d", 2))
    change = changes(now, then)
    assert change.appeared == (b"a", b"c") and change.vanished == (b"d",)
    history = {
        i: BucketRecord(
            "x", i, 3600.0, metrics={"hits": 90.0 if i % 2 else 50.0, "misses": 10.0 if i % 2 else 50.0}
        )
        for i in range(0, 8)
    }
    assert hit_ratio_by_phase(history, 4) == pytest.approx([50.0, 90.0, 50.0, 90.0])
    chart = bar_chart([50.0, 100.0, None], height=2, width=9)
    assert chart == ["   ██", "▁▁ ██"]


def test_a_chain_far_behind_the_target_predicts_nothing() -> None:
    history = {1: top(1, ("a", 1)), 2: top(2, ("b", 1))}
    assert sequence(history, history[1], 2, rollup) == pytest.approx({b"b": 1.0})
    assert sequence(history, history[1], 100, rollup, max_steps=24) == {}


def test_a_young_bucket_shares_the_say_with_the_closed_one_before_it() -> None:
    # a -> b -> c, learned; the bucket being counted (3) has seen a quarter of itself and holds a
    # leftover of the bucket before it (a's keys), plus b
    history = {0: top(0, ("a", 1)), 1: top(1, ("b", 1)), 2: top(2, ("c", 1)), 4: top(4, ("a", 1))}
    young = top(5, ("a", 1), ("b", 1))
    from cachetop.analysis.predict import sequence_now

    # seen fully: the chain steps from young: a -> b, b -> c, half each
    assert sequence_now(history, young, 6, rollup, 10, 1.0) == pytest.approx({b"b": 0.5, b"c": 0.5})
    # a quarter seen: bucket 4 (a) stepped twice (-> c) has three quarters of the say
    assert sequence_now(history, young, 6, rollup, 10, 0.25) == pytest.approx({b"b": 0.125, b"c": 0.875})
    # a closed bucket is what it is
    assert sequence_now(history, history[4], 5, rollup, 10, 0.25) == pytest.approx({b"b": 1.0})


def test_a_namespace_lends_its_weight_to_the_keys_it_held_when_it_was_strong() -> None:
    from cachetop.analysis.predict import _spread

    history = {
        1: top(1, ("cart:1", 50), ("cart:2", 50), prefixes=(("cart:*", 100),)),
        2: top(2, ("cart:3", 2), ("home:1", 90), prefixes=(("home:*", 90), ("cart:*", 2))),  # a leftover
    }
    assert _spread({b"cart:*": 1.0}, history, rollup) == pytest.approx({b"cart:1": 0.5, b"cart:2": 0.5})

"""The keyspace estimators on plain numbers: allocation, intervals (and their coverage), cliffs,
the saved report and the expiry_cliff_keys figure."""

from __future__ import annotations

import math
import os
import random
import stat
from pathlib import Path

import pytest

from cachetop.analysis.keyspace.cliffs import Expiry, find_cliffs, largest_cliff
from cachetop.analysis.keyspace.estimate import (
    Interval,
    KeyFacts,
    count_estimate,
    estimate_prefix,
    total_estimate,
)
from cachetop.analysis.keyspace.figures import KeyspaceFigures
from cachetop.analysis.keyspace.memcached_walk import parse_metadump_line
from cachetop.analysis.keyspace.sample import NameCounter, allocate
from cachetop.analysis.keyspace.store import load_report, report_path, save_report


def test_allocate_spreads_half_equally_and_never_past_what_a_prefix_kept() -> None:
    alloc = allocate({b"a": 100, b"b": 100, b"c": 5}, {b"a": 9000, b"b": 900, b"c": 5}, 60)
    assert alloc == {b"a": 42, b"b": 13, b"c": 5}


def test_allocate_gives_everything_when_the_sample_is_bigger_than_the_keyspace() -> None:
    assert allocate({b"a": 3, b"b": 2}, {b"a": 3, b"b": 2}, 10_000) == {b"a": 3, b"b": 2}


def test_reservoirs_stay_within_three_samples_and_uniform() -> None:
    counter = NameCounter(sample=100)
    counter.add([b"big:%d" % i for i in range(20_000)] + [b"small:%d" % i for i in range(50)])
    assert counter.strata[b"big:*"].counted == 20_000
    assert counter.strata[b"small:*"].counted == 50
    assert counter.kept <= 300
    assert len(counter.strata[b"small:*"].heap) == 50  # a small prefix keeps every key
    kept = [int(k.split(b":")[1]) for _, k in counter.strata[b"big:*"].heap]
    assert 5_000 < sum(kept) / len(kept) < 15_000  # spread over the whole prefix, not its start


def test_partial_count_is_scaled_with_a_binomial_interval() -> None:
    est = count_estimate(50, 1000, 10_000)
    assert est.est == 500
    assert est.half == pytest.approx(1.96 * math.sqrt(1e8 * 0.9 * 0.05 * 0.95 / 999))
    assert count_estimate(50, 1000, None) == Interval(50.0, 0.0)  # walked to the end: exact


def test_total_interval_covers_the_true_total_about_95_percent_of_the_time() -> None:
    rng = random.Random(7)
    population = [rng.lognormvariate(5, 1) for _ in range(20_000)]
    truth = sum(population)
    covered = 0
    for _ in range(300):
        est = total_estimate(Interval(len(population), 0.0), rng.sample(population, 400))
        covered += est.est - est.half <= truth <= est.est + est.half
    assert 0.91 <= covered / 300 <= 0.99


def test_a_prefix_sampled_whole_is_exact() -> None:
    facts = [KeyFacts(b"k:%d" % i, 100 + i, "string", ttl_s=None if i else 30.0) for i in range(10)]
    est = estimate_prefix(b"k:*", 10, 10, None, facts)
    assert est.exact and est.bytes == Interval(1045.0, 0.0)
    assert est.ttl == {"none": 9.0, "lt_1m": 1.0, "lt_1h": 0.0, "lt_1d": 0.0, "longer": 0.0}


def spread_and_promo(now: float) -> list[Expiry]:
    spread = [Expiry(now + 0.5 + i * 7.2, b"sess:*", 100.0, 50_000, 500) for i in range(500)]
    promo = [Expiry(now + 300.4, b"promo:*", 50.0, 1500, 30) for _ in range(30)]
    return spread + promo


def test_a_cliff_is_found_with_its_second_count_and_prefix() -> None:
    cliffs = find_cliffs(spread_and_promo(1000.0), 1000.0)
    assert len(cliffs) == 1
    (cliff,) = cliffs
    assert (cliff.at, cliff.keys_est, cliff.sampled) == (1300, 1500.0, 30)
    assert [p for p, _ in cliff.prefixes] == [b"promo:*"]
    assert "±15%" in cliff.advice() and "XFetch" in cliff.advice()


def test_no_cliff_in_an_even_spread_nor_from_one_heavy_key() -> None:
    now = 1000.0
    even = [e for e in spread_and_promo(now) if e.prefix == b"sess:*"]
    heavy = [Expiry(now + 50.2, b"rare:*", 10_000.0, 10_000, 1)]
    assert find_cliffs(even + heavy, now) == []


def test_largest_cliff_counts_only_what_is_due_within_the_horizon() -> None:
    report = {"cliffs": [{"at": 1300, "keys_est": 1500}, {"at": 5000, "keys_est": 9000}]}
    assert largest_cliff(report, 1000.0, 3600.0) == 1500
    assert largest_cliff(report, 1000.0, 5000.0) == 9000
    assert largest_cliff(report, 1302.0, 3600.0) == 0  # 1300 has passed, 5000 is beyond the hour
    assert largest_cliff({"cliffs": []}, 0.0) == 0


def test_saved_report_round_trips_privately(tmp_path: Path) -> None:
    report = {"name": "cache[1]\x1b", "cliffs": []}
    path = save_report(tmp_path, report, now=123.0)
    assert path == report_path(tmp_path, "cache[1]\x1b")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_report(tmp_path, "cache[1]\x1b") == (report, 123.0)
    assert load_report(tmp_path, "other") is None


def test_expiry_cliff_keys_figure_follows_the_clock(tmp_path: Path) -> None:
    now = [1000.0]
    tick = [0.0]
    save_report(tmp_path, {"name": "c", "cliffs": [{"at": 1600, "keys_est": 5000}]}, now=999.0)
    figs = KeyspaceFigures(tmp_path, horizon_s=3600, clock=lambda: now[0], monotonic=lambda: tick[0])
    assert figs.figures("c").metrics == {"expiry_cliff_keys": 5000}
    assert figs.figures("never-analysed") is None
    now[0] = 1602.0  # the cliff has passed
    assert figs.figures("c").metrics == {"expiry_cliff_keys": 0}
    short = KeyspaceFigures(tmp_path, horizon_s=300, clock=lambda: 1000.0)
    assert short.figures("c").metrics == {"expiry_cliff_keys": 0}


def test_metadump_lines_are_parsed_with_url_encoded_keys() -> None:
    line = b"key=a%20b%3Ac exp=-1 la=1795840375 cas=2 fetch=no cls=1 size=63"
    assert parse_metadump_line(line) == (b"a b:c", -1, 1795840375, 1, 63)
    assert parse_metadump_line(b"END") is None

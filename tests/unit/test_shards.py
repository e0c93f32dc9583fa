"""Rendezvous hashing for `--shard I/N` (engine/shards.py): pure, with plain names."""

from __future__ import annotations

import zlib

import pytest

from cachetop.engine.shards import ShardSpec, assign, moved, owner, score

NAMES = [f"cache-{n:05d}" for n in range(10_000)]


def test_parse_and_errors() -> None:
    assert ShardSpec.parse("0/2") == ShardSpec(0, 2)
    assert ShardSpec.parse(" 3 / 4 ").label == "3/4"
    for text, message in (
        ("2/2", "'2/2': the shard number I must be 0 to 1 for N=2, not 2 (shards count from 0)"),
        ("1/0", "'1/0': the number of shards N must be 1 to 4096, not 0"),
        ("0/5000", "'0/5000': the number of shards N must be 1 to 4096, not 5000"),
        ("-1/2", "'-1/2': the shard number I must be 0 to 1 for N=2, not -1 (shards count from 0)"),
        (
            "1",
            "'1' is not a shard (allowed: I/N: this daemon's number I (0 to N-1) and the number of daemons N",
        ),
        ("", "'' is not a shard"),
    ):
        with pytest.raises(ValueError) as err:
            ShardSpec.parse(text)
        assert str(err.value).startswith(message), str(err.value)


def test_owner_is_a_pure_function_of_the_name() -> None:
    # Fixed values: a daemon on another host, another Python or after a restart agrees.
    # The score is blake2b-64 of "SHARD\0NAME", never Python's hash() (salted per process).
    assert [owner(f"cache-{n}", 4) for n in range(12)] == [1, 1, 0, 0, 0, 2, 0, 1, 3, 0, 0, 1]
    assert ShardSpec(1, 4).owns("cache-0") and not ShardSpec(0, 4).owns("cache-0")
    assert score(1, "cache-0") == 7270379274393264321
    assert owner("x", 1) == 0
    assert all(0 <= owner(n, 7) < 7 for n in NAMES[:500])


def test_even_split_and_minimal_movement() -> None:
    for count in (2, 3, 5, 10):
        sizes = [0] * count
        for shard in assign(NAMES, count).values():
            sizes[shard] += 1
        # Each shard's count is binomial: within 4 standard deviations of its fair share.
        fair = len(NAMES) / count
        sd = (len(NAMES) * (1 / count) * (1 - 1 / count)) ** 0.5
        assert all(abs(size - fair) < 4 * sd for size in sizes), sizes
    for before in (1, 2, 3, 9):
        after = before + 1
        changed = moved(NAMES, before, after)
        # Only the new shard takes targets: nothing moves between the old ones.
        assert {owner(n, after) for n in changed} == {before}
        assert abs(len(changed) / len(NAMES) - 1 / after) < 0.02, (before, len(changed))
    # Against `hash % N`, which moves about N/(N+1) of the names: 2 -> 3 moves 2/3, not 1/3.
    modulo = sum(1 for n in NAMES if zlib.crc32(n.encode()) % 2 != zlib.crc32(n.encode()) % 3)
    assert modulo / len(NAMES) > 0.64 and len(moved(NAMES, 2, 3)) / len(NAMES) < 0.35

"""Issue 12: `warm` never leaves its lock keys behind, whatever the TTL or the strategy gives.

Against a real Redis: an infinite or nonsense TTL is refused in one line before anything is
locked; a strategy returning a wrong type, a giant number, an oversized value, None, or raising
(even a BaseException, as a second Ctrl-C does) leaves no `cachetop:warm:lock:*` key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import redis as redis_py

from cachetop.actions.warm import LOCK_PREFIX, MAX_VALUE_BYTES, RedisWarmer
from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.plugins import WarmItem
from cachetop.servers import LocalServer


def instance(url: str) -> InstanceConfig:
    return InstanceConfig(name="cache-1", target=parse_target(url))


def cachetop(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cachetop", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_STATE_HOME": str(state)},
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def locks(port: int) -> list[bytes]:
    return sorted(redis_py.Redis(port=port).scan_iter(match=LOCK_PREFIX + b"*"))


ALLOWED = "(allowed: a finite number of seconds from 0.001 to 315,360,000, e.g. 3600 or 1h)"


def test_infinite_ttl_in_a_warm_file_is_one_line_and_locks_nothing(
    redis: LocalServer, tmp_path: Path
) -> None:
    path = tmp_path / "warm.jsonl"
    path.write_text('{"key": "a", "value": "1", "ttl": 60}\n{"key": "b", "value": "2", "ttl": 1e400}\n')
    out = cachetop("warm", redis.url, "--strategy", "file", "--file", str(path), state=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("cachetop: --strategy file: ") and out.stderr.count("\n") == 1
    assert out.stderr.endswith(f"{path}:2: ttl: inf is not a usable TTL {ALLOWED}; or null for no expiry\n")
    assert redis_py.Redis(port=redis.port).dbsize() == 0  # nothing written, no lock left


@pytest.mark.parametrize(
    ("flag", "value", "shown", "allowed"),
    [
        ("--ttl", "1e400", "inf", ALLOWED),
        ("--ttl", "nan", "nan", ALLOWED),
        ("--ttl", "0", "0.0", ALLOWED),
        (
            "--lock-ttl",
            "1e400",
            "inf",
            "(allowed: a finite number of seconds from 0.1 to 3,600, e.g. 3600 or 1h)",
        ),
    ],
)
def test_nonsense_ttl_flags_are_refused_before_anything_is_locked(
    flag: str, value: str, shown: str, allowed: str, redis: LocalServer, tmp_path: Path
) -> None:
    path = tmp_path / "warm.jsonl"
    path.write_text('{"key": "a", "value": "1", "ttl": null}\n')
    out = cachetop("warm", redis.url, "--strategy", "file", "--file", str(path), flag, value, state=tmp_path)
    assert out.returncode == 2
    # One line naming the flag and what is allowed (parse_duration itself may already refuse a
    # non-finite duration; then its words are used, else warm's bounds check says it).
    assert out.stderr.startswith(f"cachetop: {flag}: ") and out.stderr.count("\n") == 1
    assert out.stderr.strip() in (
        f"cachetop: {flag}: {shown} is not a usable TTL {allowed}",
        f'cachetop: {flag}: "{value}" is not a finite duration (allowed: "2s", "5m", "1h"...)',
    )
    assert redis_py.Redis(port=redis.port).dbsize() == 0


class BadValues:
    """A strategy whose fetch() returns, per key, something cachetop cannot write."""

    name: ClassVar[str] = "bad-values"
    description: ClassVar[str] = "returns wrong values"

    def __init__(self, answers: dict[bytes, Callable[[], object]], items: list[WarmItem]) -> None:
        self.answers = answers
        self.items = items
        self.lock_ttls: list[int] = []
        self.port = 0

    def plan(self) -> Iterator[WarmItem]:
        return iter(self.items)

    def fetch(self, item: WarmItem) -> object:
        # While fetching, this key's lock exists and expires on its own (PX): a SIGKILL now
        # would leave it for at most the lock TTL.
        self.lock_ttls.append(int(redis_py.Redis(port=self.port).pttl(LOCK_PREFIX + item.key)))
        return self.answers[item.key]()


def _raise() -> object:
    raise RuntimeError("the database is down")


def test_bad_values_from_a_strategy_skip_their_keys_and_leave_no_lock(redis: LocalServer) -> None:
    answers: dict[bytes, Callable[[], object]] = {
        b"good": lambda: b"value",
        b"int": lambda: 10**15,  # bytes(10**15) would try to allocate a petabyte
        b"dict": lambda: {"a": 1},
        b"huge": lambda: b"x" * (MAX_VALUE_BYTES + 1),
        b"none": lambda: None,
        b"raises": _raise,
    }
    items = [WarmItem(k, ttl=60) for k in answers]
    items += [WarmItem(b"inf-ttl", ttl=float("inf")), WarmItem("str-key", ttl=60)]  # type: ignore[arg-type]
    warmer = BadValues(answers, items)
    warmer.port = redis.port
    result = RedisWarmer(instance(redis.url), warmer, rate=0, batch=3, lock_ttl_s=30).run(dry_run=False)
    assert locks(redis.port) == []
    assert (result.planned, result.written, result.fetched, result.empty, result.failed) == (8, 1, 6, 1, 6)
    client = redis_py.Redis(port=redis.port)
    assert client.keys("*") == [b"good"] and client.get("good") == b"value"
    assert result.error == "fetch int: the strategy's value is a int, expected bytes, str or None"
    assert all(0 < ttl <= 30_000 for ttl in warmer.lock_ttls) and len(warmer.lock_ttls) == 6


def test_each_bad_value_alone_is_named_in_one_line(redis: LocalServer) -> None:
    cases: list[tuple[WarmItem, Callable[[], object], str]] = [
        (WarmItem(b"k", ttl=60), lambda: {"a": 1}, "fetch k: the strategy's value is a dict, expected bytes"),
        (
            WarmItem(b"k", ttl=60),
            lambda: b"x" * (MAX_VALUE_BYTES + 1),
            f"fetch k: the strategy's value is {MAX_VALUE_BYTES + 1:,} bytes, more than the "
            f"{MAX_VALUE_BYTES:,} a value may have",
        ),
        (WarmItem(b"k", ttl=60), _raise, "fetch k: RuntimeError: the database is down"),
        (
            WarmItem(b"k", ttl=float("inf")),
            lambda: b"v",
            f"strategy bad-values: the ttl of k: inf is not a usable TTL {ALLOWED}",
        ),
    ]
    for item, answer, error in cases:
        warmer = BadValues({b"k": answer}, [item])
        warmer.port = redis.port
        result = RedisWarmer(instance(redis.url), warmer, rate=0).run(dry_run=False)
        assert result.error is not None and result.error.startswith(error), result.error
        assert "\n" not in result.error and result.failed == 1 and result.written == 0
        assert locks(redis.port) == [] and redis_py.Redis(port=redis.port).dbsize() == 0


def test_a_base_exception_mid_batch_still_releases_the_locks(redis: LocalServer) -> None:
    def interrupted() -> object:
        raise KeyboardInterrupt  # what a second Ctrl-C / SIGTERM raises in the middle of a fetch

    answers: dict[bytes, Callable[[], object]] = {b"a": lambda: b"1", b"b": interrupted, b"c": lambda: b"3"}
    warmer = BadValues(answers, [WarmItem(k, ttl=60) for k in answers])
    warmer.port = redis.port
    with pytest.raises(KeyboardInterrupt):
        RedisWarmer(instance(redis.url), warmer, rate=0, batch=10).run(dry_run=False)
    assert locks(redis.port) == []
    assert redis_py.Redis(port=redis.port).dbsize() == 0


def test_a_strategy_calling_exit_in_fetch_is_a_failed_key(redis: LocalServer) -> None:
    def exits() -> object:
        raise SystemExit(3)

    warmer = BadValues({b"a": exits, b"b": lambda: b"2"}, [WarmItem(b"a"), WarmItem(b"b")])
    warmer.port = redis.port
    result = RedisWarmer(instance(redis.url), warmer, rate=0).run(dry_run=False)
    assert (result.written, result.failed, result.error) == (1, 1, "fetch a: SystemExit: 3")
    assert locks(redis.port) == []

"""Pure parts of evict/warm: the rate budget (injected clock), globs, cluster maps, messages,
confirmation, the audit log and the read-only guard."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cachetop.actions.audit import AuditLog, ReadOnlyError, check_writable
from cachetop.actions.budget import RateBudget, batch_size
from cachetop.actions.console import confirm, pick_instances
from cachetop.actions.evict import EvictRequest, EvictResult, prefix_glob, summary
from cachetop.actions.redis_nodes import ActionError, Node, parse_cluster_nodes
from cachetop.engine.config import InstanceConfig, config_from_targets, parse_target
from cachetop.engine.configfile import ConfigError


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        self.now += seconds


def test_budget_paces_to_the_rate_after_the_burst() -> None:
    t = FakeTime()
    budget = RateBudget(1000, burst=100, clock=t.clock, wait=t.wait)
    assert budget.take(100) == 0.0  # the burst is free
    assert budget.take(500) == pytest.approx(0.5)
    t.now += 0.1  # 100 tokens accrued while the caller worked
    assert budget.take(100) == 0.0
    t.now += 5.0  # idle time refills only up to the burst
    assert budget.take(1100) == pytest.approx(1.0)
    assert t.waits == [0.5, 1.0]
    assert budget.waited_s == pytest.approx(1.5)


def test_budget_zero_is_unlimited_and_batches_follow_the_rate() -> None:
    t = FakeTime()
    budget = RateBudget(0, clock=t.clock, wait=t.wait)
    assert budget.take(10**9) == 0.0 and t.waits == []
    assert (batch_size(0, 2000), batch_size(20_000, 2000), batch_size(5000, 2000), batch_size(50, 2000)) == (
        2000,
        2000,
        500,
        10,
    )
    with pytest.raises(ValueError):
        RateBudget(-1)


def test_prefix_glob_escapes_all_but_wildcards() -> None:
    assert prefix_glob(b"user:*:cart") == b"user:*:cart"
    assert prefix_glob(b"a?b:[x]:*:c\\d") == b"a\\?b:\\[x\\]:*:c\\\\d"


def test_request_needs_exactly_one_selector() -> None:
    with pytest.raises(ValueError):
        EvictRequest()
    with pytest.raises(ValueError):
        EvictRequest(keys=(b"a",), pattern=b"x*")
    assert EvictRequest(pattern=b"\x1b[2Jsess:*").describe() == {"pattern": "\\x1b[2Jsess:*"}
    assert EvictRequest(keys=(b"a", b"b")).describe() == {"keys": ["a", "b"], "key_count": 2}


CLUSTER_NODES = b"""\
07c3 127.0.0.1:30002@40002 master - 0 1 2 connected 5461-10922
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 [93->-292f]
9dc2 127.0.0.1:30004@40004 slave 07c3 0 1 2 connected
292f 127.0.0.1:30003@40003 master - 0 1 3 connected 10923-16383
"""


def test_cluster_nodes_gives_masters_with_their_slots() -> None:
    masters = parse_cluster_nodes(CLUSTER_NODES, "127.0.0.1")
    assert masters == [
        Node("127.0.0.1", 30001, ((0, 5460),)),
        Node("127.0.0.1", 30002, ((5461, 10922),)),
        Node("127.0.0.1", 30003, ((10923, 16383),)),
    ]
    assert masters[1].owns(5461) and not masters[1].owns(5460)
    failing = CLUSTER_NODES.replace(b"master - 0 1 3", b"master,fail - 0 1 3")
    with pytest.raises(ActionError, match=r"cluster master 127\.0\.0\.1:30003 is failing"):
        parse_cluster_nodes(failing, "127.0.0.1")


def test_summaries_say_what_was_done() -> None:
    dry = EvictResult(dry_run=True, matched=104_233, examples=[b"sess:1", b"sess:17", b"\x1b[31m"])
    assert (
        summary(dry, "cache-1") == "would evict 104,233 keys from cache-1, e.g. sess:1, sess:17, \\x1b[31m, …"
    )
    done = EvictResult(dry_run=False, matched=5000, evicted=4990, elapsed_s=0.5)
    assert summary(done, "c") == "evicted 4,990 of 5,000 matched keys from c in 0.50s (9,980 keys/s)"
    cut = EvictResult(dry_run=False, matched=300, evicted=200, cancelled=True)
    assert summary(cut, "c") == "cancelled: removed exactly 200 keys from c (of 300 matched)"


def test_confirm_asks_for_the_name_above_1000_keys() -> None:
    out = io.StringIO()
    assert confirm("Evict 5 keys?", "prod", 5, stdin=io.StringIO("y\n"), out=out)
    assert out.getvalue() == "Evict 5 keys? [y/N] "
    assert not confirm("Evict 5 keys?", "prod", 5, stdin=io.StringIO("\n"), out=io.StringIO())
    out = io.StringIO()
    assert not confirm("Evict 1,001 keys?", "prod", 1001, stdin=io.StringIO("y\n"), out=out)
    assert out.getvalue() == "Evict 1,001 keys?\nType the instance name (prod) to confirm: "
    assert confirm("Evict 1,001 keys?", "prod", 1001, stdin=io.StringIO("prod\n"), out=io.StringIO())


def test_instances_to_act_on() -> None:
    two_redis = config_from_targets(["redis://127.0.0.1:1", "redis://127.0.0.1:2"])
    with pytest.raises(ConfigError, match="2 instances to choose from: name one with --instance NAME"):
        pick_instances(two_redis, None)
    assert [i.name for i in pick_instances(two_redis, "127.0.0.1:2")] == ["127.0.0.1:2"]
    pool = config_from_targets(["memcached://127.0.0.1:1", "memcached://127.0.0.1:2"])
    assert len(pick_instances(pool, None)) == 2


def test_read_only_guard_and_audit_log(tmp_path: Path) -> None:
    inst = InstanceConfig(
        name="prod", target=parse_target("redis://:s3cretpass@127.0.0.1:6379"), read_only=True
    )
    with pytest.raises(ReadOnlyError) as err:
        check_writable(inst, read_only=False, action="evict", config_path="/etc/cachetop.toml")
    assert str(err.value) == (
        "refused: instance prod is read_only = true in /etc/cachetop.toml, so evict is not allowed "
        "(set read_only = false to act on it)"
    )
    log = AuditLog(tmp_path / "state", source="tui")
    log.record(
        "evict", inst, outcome="done", what={"keys": ["k"]}, matched=1, evicted=1, note="pw s3cretpass"
    )
    log.record("warm", None, outcome="refused")
    entries = list(log.entries())
    assert [(e["action"], e["source"], e["outcome"]) for e in entries] == [
        ("evict", "tui", "done"),
        ("warm", "tui", "refused"),
    ]
    first = entries[0]
    assert (first["instance"], first["target"], first["matched"], first["evicted"]) == (
        "prod",
        "redis://:***@127.0.0.1:6379",
        1,
        1,
    )
    assert set(first) >= {"time", "user", "host", "pid"}
    raw = (tmp_path / "state" / "audit.jsonl").read_text()
    assert "s3cretpass" not in raw and json.loads(raw.splitlines()[0])["note"] == "pw ***"
    assert (tmp_path / "state" / "audit.jsonl").stat().st_mode & 0o777 == 0o600


def test_node_states_after_a_failure_a_cancel_and_a_complete_run() -> None:
    failed = EvictResult(dry_run=False)
    failed.set_nodes(["a:1", "b:2", "c:3"])
    failed.start_node("a:1")
    failed.add_evicted("a:1", 10)
    failed.finish_node("a:1")
    failed.start_node("b:2")
    failed.add_evicted("b:2", 4)
    failed.fail_node("b:2", "b:2: Timeout reading from socket", uncertain=3)
    failed.settle()
    assert failed.as_json() == {
        "matched": 0,
        "evicted": 14,
        "dry_run": False,
        "complete": False,
        "cancelled": False,
        "error": "b:2: Timeout reading from socket",
        "uncertain": 3,
        "nodes": {
            "a:1": {"state": "done", "evicted": 10},
            "b:2": {
                "state": "failed",
                "evicted": 4,
                "uncertain": 3,
                "error": "b:2: Timeout reading from socket",
            },
            "c:3": {"state": "not_started", "evicted": 0},
        },
    }
    cancelled = EvictResult(dry_run=False, cancelled=True)
    cancelled.set_nodes(["a:1", "b:2"])
    cancelled.start_node("a:1")
    cancelled.settle()
    assert {a: r.state for a, r in cancelled.node_reports.items()} == {
        "a:1": "cancelled",
        "b:2": "not_started",
    }
    done = EvictResult(dry_run=False)
    done.set_nodes(["a:1", "b:2"])  # b:2 held none of the keys: it is done too
    done.start_node("a:1")
    done.settle()
    assert {r.state for r in done.node_reports.values()} == {"done"} and done.complete


def test_a_stopped_node_is_one_another_node_s_failure_interrupted() -> None:
    pool = EvictResult(dry_run=False)
    pool.set_nodes(["a:1", "b:2"])
    pool.start_node("a:1")
    pool.fail_node("b:2", "memcached://b:2: ConnectionRefusedError")
    pool.settle()
    assert {a: r.state for a, r in pool.node_reports.items()} == {"a:1": "stopped", "b:2": "failed"}

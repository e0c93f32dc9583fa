"""Evict keys from Redis/Valkey: one key, a list, a glob pattern or a node of the prefix tree.

Patterns are walked with SCAN MATCH COUNT (never KEYS) and removed with UNLINK (freed in the
background), one batch per SCAN reply, paced by a RateBudget. On a cluster every master is
walked, each over its own connection; keys are grouped by slot so no command is cross-slot.

Counts are exact: `evicted` adds up UNLINK's replies, so keys that vanished on their own are not
claimed, and a cancel is honoured only between batches, so "removed exactly M" is true. SCAN may
return a key twice when the server resizes its table mid-walk; matches are de-duplicated up to
DEDUP_LIMIT keys (past it, `matched` may count such a key twice; `evicted` never does).

All or nothing where it can be: before the first UNLINK every node is connected to and asked
ROLE (it must answer within the timeout and still be a master), so a dead, hung or demoted master
stops the evict before anything is removed. A node that fails later is reported exactly: the
result says per node whether it is done, failed (with how many it removed first), cancelled or
not started, so a partial evict never looks complete (those result types and their text are in
evict_report).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.crc import key_slot

from cachetop.actions.budget import RateBudget, batch_size
from cachetop.actions.counted_conn import counted_connect, counted_discover
from cachetop.actions.evict_idle import (
    IdleReads,
    IdleUnsupported,
    idle_keys,
    is_lfu,
    lfu_refusal,
    maxmemory_policy,
)
from cachetop.actions.evict_report import EvictResult as EvictResult
from cachetop.actions.evict_report import ProgressFn as ProgressFn
from cachetop.actions.evict_report import node_lines as node_lines
from cachetop.actions.evict_report import summary as summary
from cachetop.actions.evict_unlink import existing, queue_unlinks, unlink
from cachetop.actions.own_report import NOT_REPORTED, ActionOwnReport, count_pipeline
from cachetop.actions.redis_nodes import ActionError, Node, error_text
from cachetop.engine.config import InstanceConfig
from cachetop.metrics.prefix import PrefixRoller
from cachetop.util.safe_text import display_key

DEFAULT_RATE = 20_000  # keys per second; 0 = no limit
MAX_BATCH = 5_000
EXAMPLES = 5
DEDUP_LIMIT = 1_000_000
CLIENT_NAME = "cachetop-evict"
_GLOB_SPECIAL = re.compile(rb"([?\[\]\\])")


@dataclass(frozen=True, slots=True)
class EvictRequest:
    """Exactly one of keys, pattern (a glob) or prefix (a rolled-up namespace like user:*:cart);
    with idle_over_s, only the keys of a pattern or prefix idle for at least that many seconds
    (OBJECT IDLETIME: see evict_idle)."""

    keys: tuple[bytes, ...] = ()
    pattern: bytes | None = None
    prefix: bytes | None = None
    separators: str = ":"
    idle_over_s: int | None = None

    def __post_init__(self) -> None:
        given = sum(1 for x in (self.keys, self.pattern, self.prefix) if x)
        if given != 1:
            raise ValueError("give exactly one of: keys, a pattern or a prefix")
        if self.idle_over_s is not None and (self.keys or self.idle_over_s < 1):
            raise ValueError("idle_over_s is at least 1 and goes with a pattern or a prefix, not keys")

    def describe(self) -> dict[str, Any]:
        """What, for the audit log and messages: escaped, bounded."""
        from cachetop.actions.audit import key_fields, pattern_field

        idle = {} if self.idle_over_s is None else {"idle_over_s": self.idle_over_s}
        if self.pattern is not None:
            return dict(pattern_field(self.pattern)) | idle
        if self.prefix is not None:
            return {"prefix": display_key(self.prefix, 256)} | idle
        return key_fields(self.keys)

    def label(self) -> str:
        idle = "" if self.idle_over_s is None else f" idle over {self.idle_over_s}s"
        if self.pattern is not None:
            return f"pattern {display_key(self.pattern, 60)}{idle}"
        if self.prefix is not None:
            return f"prefix {display_key(self.prefix, 60)}{idle}"
        if len(self.keys) == 1:
            return f"key {display_key(self.keys[0], 60)}"
        return f"{len(self.keys)} keys"


def prefix_glob(prefix: bytes) -> bytes:
    """A SCAN MATCH glob that finds every key of a rolled-up namespace (and maybe a few more,
    which the roll-up check then drops): wildcards stay, other glob characters are escaped."""
    return _GLOB_SPECIAL.sub(rb"\\\1", prefix)


class RedisEvictor:
    """Runs one EvictRequest against one instance (all masters of a cluster)."""

    def __init__(
        self,
        inst: InstanceConfig,
        *,
        timeout: float = 5.0,
        rate: float = DEFAULT_RATE,
        batch: int | None = None,
        cancel: threading.Event | None = None,
        progress: ProgressFn | None = None,
        clock: Callable[[], float] = time.monotonic,
        own: ActionOwnReport = NOT_REPORTED,
    ) -> None:
        self.inst = inst
        # Beside a poller (the daemon's API, the dashboard), every round trip is reported to the
        # instance's backend as own traffic, under its gate (actions/own_report.py).
        self.own = own
        self.timeout = timeout
        self.cancel = cancel or threading.Event()
        self.budget = RateBudget(rate, clock=clock, wait=self.cancel.wait)
        self.batch = batch or batch_size(rate, MAX_BATCH)
        self.progress = progress or (lambda _r: None)
        self.clock = clock
        self._seen: set[bytes] = set()
        self._idle_over_s: int | None = None
        self.idle_reads = IdleReads()  # OBJECT IDLETIME calls sent and the hits/misses they caused

    def run(self, request: EvictRequest, *, dry_run: bool) -> EvictResult:
        result = EvictResult(dry_run=dry_run)
        self._idle_over_s = request.idle_over_s
        start = self.clock()
        nodes = counted_discover(self.inst, self.timeout, CLIENT_NAME, self.own)
        cluster = bool(nodes[0].slots)
        result.set_nodes(n.address for n in nodes)
        clients: dict[Node, Any] = {}
        try:
            if self._preflight(nodes, cluster, result, clients):
                if request.keys:
                    self._keys(nodes, request.keys, result, cluster, clients)
                else:
                    for node in nodes:
                        if self.cancel.is_set():
                            result.cancelled = True
                            break
                        self._scan_node(node, request, result, cluster, clients[node])
                        if result.error or result.cancelled:
                            break
        except KeyboardInterrupt:  # a second signal: stopped mid-batch, so the run is cancelled
            result.cancelled = True
            raise
        finally:
            for client in clients.values():
                client.close()
                self.own.opened(-1)
            result.elapsed_s = self.clock() - start
            result.settle()
        self.progress(result)
        return result

    def _preflight(
        self, nodes: list[Node], cluster: bool, result: EvictResult, clients: dict[Node, Any]
    ) -> bool:
        """Connects to every node and asks ROLE before anything is removed: each must answer
        within the timeout and (unless this is a dry run) be a master. On the first node that
        does not, that node is marked failed, the others not started, and False is returned.
        The connections stay open for the walk (one per node, as before)."""
        for node in nodes:
            where = node.address if cluster else None
            try:
                client = self._connect(node, cluster)
            except ActionError as exc:
                result.fail_node(node.address, f"{exc} (checked before evicting: nothing was removed)")
                return False
            clients[node] = client
            try:
                with self.own.sending() as count:
                    count("role", 1)
                    role = client.execute_command("ROLE")
            except redis.RedisError as exc:
                text = error_text(self.inst, exc, where)
                result.fail_node(node.address, f"{text} (checked before evicting: nothing was removed)")
                return False
            kind = role[0].decode() if role and isinstance(role[0], bytes) else str(role[0] if role else "")
            if kind != "master" and not result.dry_run:
                text = (
                    f"{where or self.inst.target.redacted_url} is a {kind or 'node of unknown role'}, "
                    "not a master (checked before evicting: nothing was removed; point at the master, "
                    "or wait for the failover to finish)"
                )
                result.fail_node(node.address, text)
                return False
            if self._idle_over_s is not None and not self._idle_tracked(node, client, result, where):
                return False
        return True

    def _idle_tracked(self, node: Node, client: Any, result: EvictResult, where: str | None) -> bool:
        """An idle evict needs OBJECT IDLETIME: refused on a node with an LFU policy."""
        try:
            with self.own.sending() as count:
                count("info", 1)
                policy = maxmemory_policy(client)
        except redis.RedisError as exc:
            text = error_text(self.inst, exc, where)
            result.fail_node(node.address, f"{text} (checked before evicting: nothing was removed)")
            return False
        if is_lfu(policy):
            result.fail_node(node.address, lfu_refusal(where or self.inst.target.redacted_url, policy))
            return False
        return True

    # --- patterns -----------------------------------------------------------------------------

    def _scan_node(
        self, node: Node, request: EvictRequest, result: EvictResult, cluster: bool, client: Any
    ) -> None:
        match = request.pattern if request.pattern is not None else prefix_glob(request.prefix or b"")
        roller = PrefixRoller(request.separators) if request.prefix is not None else None
        url = self.inst.target.redacted_url
        where = f"{url} ({node.address})" if cluster else None
        result.start_node(node.address)
        pending: list[bytes] = []
        try:
            # Each round trip carries the UNLINKs of one batch and the SCAN for the next, so a
            # batch costs one round trip, not two.
            with self.own.sending() as count:
                count("scan", 1)
                cursor, raw = client.scan(0, match=match, count=self.batch)
            while True:
                found = [k for k in raw if roller is None or roller.rollup(k) == request.prefix]
                fresh = self._fresh(found)
                if self._idle_over_s is not None:
                    self.budget.take(len(fresh))  # one OBJECT IDLETIME each
                    fresh = self._idle_keys(client, fresh, where or url)
                result.matched += len(fresh)
                self._examples(result, fresh)
                self.budget.take(len(raw))
                if self.cancel.is_set():  # also while waiting for budget: this batch is not started
                    result.cancelled = True
                    return
                todo = fresh if not result.dry_run else []
                more = int(cursor) != 0
                if not todo and not more:
                    result.finish_node(node.address)
                    return
                pipe = client.pipeline(transaction=False)
                commands = queue_unlinks(pipe, todo, cluster)
                if more:
                    pipe.scan(cursor, match=match, count=self.batch)
                pending = todo
                with self.own.sending() as count:
                    count_pipeline(pipe, count)
                    replies = pipe.execute()
                pending = []
                if commands:
                    result.add_evicted(node.address, sum(int(n) for n in replies[:commands]))
                self.progress(result)
                if not more:
                    result.finish_node(node.address)
                    return
                cursor, raw = replies[-1]
        except IdleUnsupported as exc:  # our own text, longer than a server error's first 200 characters
            result.fail_node(node.address, str(exc), len(pending))
        except redis.RedisError as exc:
            result.fail_node(node.address, error_text(self.inst, exc, where), len(pending))
        except BaseException:  # a second Ctrl-C / SIGTERM: the batch in flight may be gone or not
            result.node(node.address).uncertain += len(pending)
            result.uncertain += len(pending)
            raise

    def _idle_keys(self, client: Any, keys: list[bytes], where: str) -> list[bytes]:
        reads, idle_over_s = self.idle_reads, self._idle_over_s or 0
        hits, misses = reads.hits, reads.misses
        with self.own.sending() as count:
            count("object|idletime", len(keys) if keys else 0)
            try:
                return idle_keys(client, keys, idle_over_s, reads, where)
            finally:
                self.own.read(reads.hits - hits, reads.misses - misses)

    def _fresh(self, keys: list[bytes]) -> list[bytes]:
        # Set operations run in C: de-duplicating costs little next to the round trip.
        if len(self._seen) >= DEDUP_LIMIT:
            return keys
        fresh = set(keys) - self._seen
        self._seen |= fresh
        return keys if len(fresh) == len(keys) else [k for k in keys if k in fresh]

    @staticmethod
    def _examples(result: EvictResult, keys: list[bytes]) -> None:
        room = EXAMPLES - len(result.examples)
        if room > 0:
            result.examples.extend(keys[:room])

    def _connect(self, node: Node, cluster: bool) -> Any:
        return counted_connect(self.inst, self.timeout, CLIENT_NAME, self.own, node if cluster else None)

    # --- named keys ---------------------------------------------------------------------------

    def _keys(
        self,
        nodes: list[Node],
        keys: tuple[bytes, ...],
        result: EvictResult,
        cluster: bool,
        clients: dict[Node, Any],
    ) -> None:
        by_node: dict[Node, list[bytes]] = {}
        for key in dict.fromkeys(keys):  # once each, in the order given
            node = nodes[0]
            if cluster:
                slot = key_slot(key)
                node = next(n for n in nodes if n.owns(slot))
            by_node.setdefault(node, []).append(key)
        for node, node_keys in by_node.items():
            client = clients[node]
            result.start_node(node.address)
            in_flight = 0
            try:
                for start in range(0, len(node_keys), self.batch):
                    if self.cancel.is_set():
                        result.cancelled = True
                        return
                    chunk = node_keys[start : start + self.batch]
                    present = existing(client, chunk, self.own)
                    result.matched += len(present)
                    self._examples(result, present)
                    if result.dry_run or not present:
                        continue
                    self.budget.take(len(present))
                    if self.cancel.is_set():
                        result.cancelled = True
                        return
                    in_flight = len(present)
                    removed = unlink(client, present, cluster, self.own)
                    in_flight = 0
                    result.add_evicted(node.address, removed)
                    self.progress(result)
                result.finish_node(node.address)
            except redis.RedisError as exc:
                where = node.address if cluster else None
                result.fail_node(node.address, error_text(self.inst, exc, where), in_flight)
                return
            except BaseException:  # a second Ctrl-C / SIGTERM: the batch in flight may be gone or not
                result.node(node.address).uncertain += in_flight
                result.uncertain += in_flight
                raise

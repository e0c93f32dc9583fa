"""Evict keys from Redis/Valkey: one key, a list, a glob pattern or a node of the prefix tree.

Patterns are walked with SCAN MATCH COUNT (never KEYS) and removed with UNLINK (freed in the
background), one batch per SCAN reply, paced by a RateBudget. On a cluster every master is
walked, each over its own connection; keys are grouped by slot so no command is cross-slot.

Counts are exact: `evicted` adds up UNLINK's replies, so keys that vanished on their own are not
claimed, and a cancel is honoured only between batches, so "removed exactly M" is true. SCAN may
return a key twice when the server resizes its table mid-walk; matches are de-duplicated up to
DEDUP_LIMIT keys (past it, `matched` may count such a key twice; `evicted` never does).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.crc import key_slot

from cachetop.actions.budget import RateBudget, batch_size
from cachetop.actions.redis_nodes import ActionError, Node, connect, discover_nodes, error_text
from cachetop.config import InstanceConfig
from cachetop.metrics.prefix import PrefixRoller
from cachetop.safe_text import display_key

DEFAULT_RATE = 20_000  # keys per second; 0 = no limit
MAX_BATCH = 5_000
EXAMPLES = 5
DEDUP_LIMIT = 1_000_000
CLIENT_NAME = "cachetop-evict"
_GLOB_SPECIAL = re.compile(rb"([?\[\]\\])")


@dataclass(frozen=True, slots=True)
class EvictRequest:
    """Exactly one of keys, pattern (a glob) or prefix (a rolled-up namespace like user:*:cart)."""

    keys: tuple[bytes, ...] = ()
    pattern: bytes | None = None
    prefix: bytes | None = None
    separators: str = ":"

    def __post_init__(self) -> None:
        given = sum(1 for x in (self.keys, self.pattern, self.prefix) if x)
        if given != 1:
            raise ValueError("give exactly one of: keys, a pattern or a prefix")

    def describe(self) -> dict[str, Any]:
        """What, for the audit log and messages: escaped, bounded."""
        from cachetop.actions.audit import key_fields, pattern_field

        if self.pattern is not None:
            return dict(pattern_field(self.pattern))
        if self.prefix is not None:
            return {"prefix": display_key(self.prefix, 256)}
        return key_fields(self.keys)

    def label(self) -> str:
        if self.pattern is not None:
            return f"pattern {display_key(self.pattern, 60)}"
        if self.prefix is not None:
            return f"prefix {display_key(self.prefix, 60)}"
        if len(self.keys) == 1:
            return f"key {display_key(self.keys[0], 60)}"
        return f"{len(self.keys)} keys"


@dataclass(slots=True)
class EvictResult:
    dry_run: bool
    matched: int = 0
    evicted: int = 0
    cancelled: bool = False
    error: str | None = None  # set when a node failed part-way; the counts are what was done
    uncertain: int = 0  # keys in a batch whose reply was lost: they may or may not be gone
    examples: list[bytes] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    evicted_by_node: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def add_evicted(self, node: str, removed: int) -> None:
        self.evicted += removed
        self.evicted_by_node[node] = self.evicted_by_node.get(node, 0) + removed

    def as_json(self) -> dict[str, Any]:
        return {"matched": self.matched, "evicted": self.evicted, "dry_run": self.dry_run}

    @property
    def rate(self) -> float:
        return self.evicted / self.elapsed_s if self.elapsed_s > 0 else 0.0


ProgressFn = Callable[[EvictResult], None]


def prefix_glob(prefix: bytes) -> bytes:
    """A SCAN MATCH glob that finds every key of a rolled-up namespace (and maybe a few more,
    which the roll-up check then drops): wildcards stay, other glob characters are escaped."""
    return _GLOB_SPECIAL.sub(rb"\\\1", prefix)


def describe_examples(examples: Iterable[bytes], total: int) -> str:
    shown = [display_key(k, 40) for k in examples]
    more = ", …" if total > len(shown) else ""
    return ", ".join(shown) + more


def summary(result: EvictResult, instance: str) -> str:
    """One line for a person: the dry run's "would evict ..." or what was done."""
    name = display_key(instance, 60)
    examples = describe_examples(result.examples, result.matched)
    eg = f", e.g. {examples}" if examples else ""
    if result.dry_run:
        noun = "key" if result.matched == 1 else "keys"
        return f"would evict {result.matched:,} {noun} from {name}{eg}"
    if result.cancelled:
        return (
            f"cancelled: removed exactly {result.evicted:,} keys from {name} (of {result.matched:,} matched)"
        )
    text = f"evicted {result.evicted:,} of {result.matched:,} matched keys from {name}"
    if result.elapsed_s > 0 and result.evicted >= 1000:
        text += f" in {result.elapsed_s:.2f}s ({result.rate:,.0f} keys/s)"
    if result.error:
        text += f"; stopped: {result.error}"
        if result.uncertain:
            text += f" ({result.uncertain:,} more keys were in flight and may be gone too)"
    return text


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
    ) -> None:
        self.inst = inst
        self.timeout = timeout
        self.cancel = cancel or threading.Event()
        self.budget = RateBudget(rate, clock=clock, wait=self.cancel.wait)
        self.batch = batch or batch_size(rate, MAX_BATCH)
        self.progress = progress or (lambda _r: None)
        self.clock = clock
        self._seen: set[bytes] = set()

    def run(self, request: EvictRequest, *, dry_run: bool) -> EvictResult:
        result = EvictResult(dry_run=dry_run)
        start = self.clock()
        nodes = discover_nodes(self.inst, self.timeout, CLIENT_NAME)
        cluster = bool(nodes[0].slots)
        result.nodes = [n.address for n in nodes]
        try:
            if request.keys:
                self._keys(nodes, request.keys, result, cluster)
            else:
                for node in nodes:
                    if self.cancel.is_set():
                        result.cancelled = True
                        break
                    self._scan_node(node, request, result, cluster)
                    if result.error or result.cancelled:
                        break
        finally:
            result.elapsed_s = self.clock() - start
        self.progress(result)
        return result

    # --- patterns -----------------------------------------------------------------------------

    def _scan_node(self, node: Node, request: EvictRequest, result: EvictResult, cluster: bool) -> None:
        match = request.pattern if request.pattern is not None else prefix_glob(request.prefix or b"")
        roller = PrefixRoller(request.separators) if request.prefix is not None else None
        where = f"{self.inst.target.redacted_url} ({node.address})" if cluster else None
        try:
            client = self._connect(node, cluster)
        except ActionError as exc:
            result.error = str(exc)
            return
        pending: list[bytes] = []
        try:
            # Each round trip carries the UNLINKs of one batch and the SCAN for the next, so a
            # batch costs one round trip, not two.
            cursor, raw = client.scan(0, match=match, count=self.batch)
            while True:
                found = [k for k in raw if roller is None or roller.rollup(k) == request.prefix]
                fresh = self._fresh(found)
                result.matched += len(fresh)
                self._examples(result, fresh)
                self.budget.take(len(raw))
                if self.cancel.is_set():  # also while waiting for budget: this batch is not started
                    result.cancelled = True
                    return
                todo = fresh if not result.dry_run else []
                more = int(cursor) != 0
                if not todo and not more:
                    return
                pipe = client.pipeline(transaction=False)
                commands = queue_unlinks(pipe, todo, cluster)
                if more:
                    pipe.scan(cursor, match=match, count=self.batch)
                pending = todo
                replies = pipe.execute()
                pending = []
                if commands:
                    result.add_evicted(node.address, sum(int(n) for n in replies[:commands]))
                self.progress(result)
                if not more:
                    return
                cursor, raw = replies[-1]
        except redis.RedisError as exc:
            result.error = error_text(self.inst, exc, where)
            result.uncertain = len(pending)
        finally:
            client.close()

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
        return connect(self.inst, self.timeout, CLIENT_NAME, node if cluster else None)

    # --- named keys ---------------------------------------------------------------------------

    def _keys(self, nodes: list[Node], keys: tuple[bytes, ...], result: EvictResult, cluster: bool) -> None:
        by_node: dict[Node, list[bytes]] = {}
        for key in dict.fromkeys(keys):  # once each, in the order given
            node = nodes[0]
            if cluster:
                slot = key_slot(key)
                node = next(n for n in nodes if n.owns(slot))
            by_node.setdefault(node, []).append(key)
        for node, node_keys in by_node.items():
            try:
                client = self._connect(node, cluster)
            except ActionError as exc:
                result.error = str(exc)
                return
            try:
                for start in range(0, len(node_keys), self.batch):
                    if self.cancel.is_set():
                        result.cancelled = True
                        return
                    chunk = node_keys[start : start + self.batch]
                    present = existing(client, chunk)
                    result.matched += len(present)
                    self._examples(result, present)
                    if result.dry_run or not present:
                        continue
                    self.budget.take(len(present))
                    if self.cancel.is_set():
                        result.cancelled = True
                        return
                    removed = unlink(client, present, cluster)
                    result.add_evicted(node.address, removed)
                    self.progress(result)
            except redis.RedisError as exc:
                result.error = error_text(self.inst, exc)
                return
            finally:
                client.close()


def existing(client: Any, keys: list[bytes]) -> list[bytes]:
    """The keys that exist, asked with MEMORY USAGE: unlike EXISTS it does not count as a
    keyspace hit or miss, so a dry run leaves the hit ratio cachetop shows alone."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
    return [k for k, size in zip(keys, pipe.execute(), strict=True) if size is not None]


def queue_unlinks(pipe: Any, keys: list[bytes], cluster: bool) -> int:
    """Queues UNLINKs for keys of one node; returns how many commands. One per slot on a cluster
    (a multi-key command must not cross slots), one for the whole batch otherwise."""
    if not keys:
        return 0
    if not cluster:
        pipe.execute_command("UNLINK", *keys)
        return 1
    by_slot: dict[int, list[bytes]] = {}
    for key in keys:
        by_slot.setdefault(key_slot(key), []).append(key)
    for group in by_slot.values():
        pipe.execute_command("UNLINK", *group)
    return len(by_slot)


def unlink(client: Any, keys: list[bytes], cluster: bool) -> int:
    """UNLINKs keys on one node; returns how many existed."""
    pipe = client.pipeline(transaction=False)
    commands = queue_unlinks(pipe, keys, cluster)
    return sum(int(n) for n in pipe.execute()[:commands])

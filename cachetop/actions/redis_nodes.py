"""Blocking redis-py connections for actions, and the masters of a cluster.

Actions run in a worker thread (TUI) or the main thread (CLI), so they use the blocking client:
one connection per node, RESP2, bytes in and out, named `cachetop-<action>` so the hot-key
collectors leave them out of their counts. Errors are rebuilt from the redacted target, never
from redis-py's text alone (it may echo arguments).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from cachetop.backends.redis_client import sync_client
from cachetop.backends.redis_db import count_databases_sync, db_missing_reason, is_db_out_of_range
from cachetop.engine.config import InstanceConfig
from cachetop.util.redact import scrub

SLOTS = 16384


class ActionError(Exception):
    """A failure to show as is: one line, no secrets, no traceback."""


@dataclass(frozen=True, slots=True)
class Node:
    """One server that holds keys: the instance itself, or one master of a cluster."""

    host: str
    port: int
    slots: tuple[tuple[int, int], ...] = ()  # inclusive ranges; empty when not a cluster

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def owns(self, slot: int) -> bool:
        return any(lo <= slot <= hi for lo, hi in self.slots)


def connect(inst: InstanceConfig, timeout: float, name: str, node: Node | None = None) -> Any:
    # No retry: a half-done action must not be silently re-sent.
    where: dict[str, Any] = {}
    if node:
        where = {"host": node.host, "port": node.port, "db": 0 if node.slots else None}
    try:
        return sync_client(inst, timeout, name, single_connection_client=True, **where)
    except redis.RedisError as exc:  # single-connection clients connect at once
        if is_db_out_of_range(exc):  # SELECT refused /db: say so before anything is done
            reason = db_missing_reason(inst.target.db, count_databases_sync(inst, timeout))
            raise ActionError(f"{inst.target.redacted_url}: {reason}; nothing was done") from None
        raise ActionError(error_text(inst, exc, node.address if node and node.slots else None)) from None


def error_text(inst: InstanceConfig, exc: BaseException, where: str | None = None) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    if inst.target.password:
        text = text.replace(inst.target.password, "***")
    return scrub(f"{where or inst.target.redacted_url}: {text}")


def parse_cluster_nodes(raw: bytes | str, seed_host: str) -> list[Node]:
    """CLUSTER NODES -> the masters that serve slots (failed masters are an error: their keys
    cannot be reached, and a partial evict must not look complete)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    masters: list[Node] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8 or "master" not in fields[2].split(","):
            continue
        flags = fields[2].split(",")
        addr = fields[1].split("@", 1)[0]
        host, _, port = addr.rpartition(":")
        ranges: list[tuple[int, int]] = []
        for spec in fields[8:]:
            if spec.startswith("["):  # a slot being migrated: [slot->-node] / [slot-<-node]
                continue
            lo, _, hi = spec.partition("-")
            ranges.append((int(lo), int(hi or lo)))
        if not ranges:
            continue
        if "fail" in flags or "fail?" in flags:
            raise ActionError(f"cluster master {addr} is failing: its keys cannot be reached")
        masters.append(Node(host or seed_host, int(port), tuple(ranges)))
    return sorted(masters, key=lambda n: n.slots[0])


def discover_nodes(inst: InstanceConfig, timeout: float, name: str) -> list[Node]:
    """The instance itself, or every master when it is a cluster node (detected, or cluster = true)."""
    client = connect(inst, timeout, name)
    try:
        info = client.info("cluster")
        if not info.get("cluster_enabled"):
            if inst.cluster:
                raise ActionError(f"{inst.target.redacted_url} is not in cluster mode (cluster = true)")
            return [Node(inst.target.host, inst.target.port)]
        masters = parse_cluster_nodes(client.execute_command("CLUSTER", "NODES"), inst.target.host)
    except redis.RedisError as exc:
        raise ActionError(error_text(inst, exc)) from None
    finally:
        client.close()
    covered = sum(hi - lo + 1 for m in masters for lo, hi in m.slots)
    if covered != SLOTS:
        raise ActionError(
            f"{inst.target.redacted_url}: the cluster serves {covered} of {SLOTS} slots "
            "(fix the cluster first: some keys could not be reached)"
        )
    return masters

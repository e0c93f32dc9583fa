"""Idle-key eviction on Redis/Valkey: which keys of a SCAN batch have not been read or written for a while.

`OBJECT IDLETIME key` is the server's own idle clock for a key (whole seconds since the last access,
from the LRU clock, whose resolution is 1 s). It does not refresh the key's LRU state, but Redis and
Valkey count it as a keyspace hit (a miss for a key that vanished), so the evictor counts those reads
for its caller. Under an LFU maxmemory policy the server does not track idle time at all (OBJECT
IDLETIME is an error), so an idle evict is refused before anything is removed.

A key matches when the idle time the server reports is at least the threshold. The check and the
UNLINK are two round trips: a key read in between (a few milliseconds) is still removed, as a cache
key may be at any time; the counts stay exact (UNLINK's replies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

LFU_HINT = "LFU"


class IdleUnsupported(redis.ResponseError):
    """The server does not track idle time (an LFU policy): the message says so and what to do."""


def lfu_refusal(where: str, policy: str | None) -> str:
    """The refusal for an LFU node: `policy` as INFO names it, or None when it changed mid-run."""
    uses = (
        f"uses maxmemory-policy {policy}" if policy else "switched to an LFU maxmemory-policy during the run"
    )
    done = "nothing was removed; " if policy else "the keys counted as evicted are gone; "
    return (
        f"{where} {uses}: under LFU policies the server tracks how often keys are read, not when, so "
        f"OBJECT IDLETIME cannot say which keys are idle ({done}evict by --pattern or --prefix instead, "
        "or switch to an LRU policy and wait for idle times to build)"
    )


def maxmemory_policy(client: Any) -> str:
    """The node's eviction policy, from INFO memory (CONFIG may be renamed or refused by ACL)."""
    info = client.info("memory")
    return str(info.get("maxmemory_policy", ""))


def is_lfu(policy: str) -> bool:
    return "lfu" in policy.lower()


@dataclass(slots=True)
class IdleReads:
    """The OBJECT IDLETIME calls one evictor sent, and the keyspace hits/misses they caused."""

    sent: int = 0
    hits: int = 0
    misses: int = 0


def idle_keys(client: Any, keys: list[bytes], idle_over_s: int, reads: IdleReads, where: str) -> list[bytes]:
    """The keys of `keys` idle for at least idle_over_s seconds (one pipelined round trip)."""
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("OBJECT", "IDLETIME", key)
    replies = pipe.execute(raise_on_error=False)
    reads.sent += len(keys)
    idle: list[bytes] = []
    for key, reply in zip(keys, replies, strict=True):
        if isinstance(reply, Exception):
            if LFU_HINT in str(reply):
                raise IdleUnsupported(lfu_refusal(where, None))
            raise reply
        if reply is None:  # gone since SCAN returned it (expired or deleted)
            reads.misses += 1
            continue
        reads.hits += 1
        if int(reply) >= idle_over_s:
            idle.append(key)
    return idle

"""The round trips of an evict that look keys up and remove them, each reported as own traffic.

MEMORY USAGE tells which named keys exist without counting a keyspace hit or miss; UNLINK frees
them in the background, one command per slot on a cluster (a multi-key command must not cross
slots). Each pipeline is sent inside `own.sending()` (actions/own_report.py): beside a poller,
its commands are counted as cachetop's own and no poll's INFO runs while it is in flight.
"""

from __future__ import annotations

from typing import Any

from redis.crc import key_slot

from cachetop.actions.own_report import NOT_REPORTED, ActionOwnReport


def existing(client: Any, keys: list[bytes], own: ActionOwnReport = NOT_REPORTED) -> list[bytes]:
    """The keys that exist, asked with MEMORY USAGE: unlike EXISTS it does not count as a
    keyspace hit or miss, so a dry run leaves the hit ratio cachetop shows alone."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
    with own.sending() as count:
        count("memory|usage", len(keys))
        sizes = pipe.execute()
    return [k for k, size in zip(keys, sizes, strict=True) if size is not None]


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


def unlink(client: Any, keys: list[bytes], cluster: bool, own: ActionOwnReport = NOT_REPORTED) -> int:
    """UNLINKs keys on one node; returns how many existed."""
    pipe = client.pipeline(transaction=False)
    commands = queue_unlinks(pipe, keys, cluster)
    with own.sending() as count:
        count("unlink", commands)
        replies = pipe.execute()
    return sum(int(n) for n in replies[:commands])

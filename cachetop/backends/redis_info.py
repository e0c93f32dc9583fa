"""Reading Redis/Valkey replies cheaply: INFO text and LATENCY HISTOGRAM, as bytes.

Only the fields a poll uses are kept; the rest of the reply is skipped without being decoded,
because parsing is most of what a poll costs the client.
"""

from __future__ import annotations

import re
from typing import Any

# The INFO fields a poll reads; everything else in the reply is skipped without being decoded.
INFO_FIELDS = frozenset(
    {
        b"keyspace_hits",
        b"keyspace_misses",
        b"total_commands_processed",
        b"total_error_replies",
        b"rejected_connections",
        b"evicted_keys",
        b"expired_keys",
        b"used_cpu_sys",
        b"used_cpu_user",
        b"used_memory",
        b"used_memory_rss",
        b"maxmemory",
        b"total_system_memory",
        b"maxmemory_policy",
        b"mem_fragmentation_ratio",
        b"connected_clients",
        b"blocked_clients",
        b"process_id",
        b"run_id",
        b"server_name",
        b"redis_version",
        b"valkey_version",
        b"uptime_in_seconds",
        b"loading",
        b"loading_loaded_perc",
        b"aof_enabled",
        b"rdb_last_bgsave_status",
        b"rdb_changes_since_last_save",
        b"rdb_last_save_time",
        b"role",
        b"connected_slaves",
    }
)


_CMDSTAT_RE = re.compile(rb"cmdstat_([^:]+):calls=(\d+),usec=(\d+),([^\r]*)")
_FAILED_RE = re.compile(rb"(?:rejected|failed)_calls=(\d+)")


# One pass of the regex engine over the reply finds every wanted field: cheaper than splitting
# ~200 lines in Python. Longest names first, so no name matches as a prefix of a longer one.
_FIELD_RE = re.compile(rb"\r\n(" + b"|".join(sorted(INFO_FIELDS, key=len, reverse=True)) + rb"):([^\r]*)")


def parse_info(raw: bytes) -> tuple[dict[bytes, bytes], dict[str, tuple[int, int, int]]]:
    """INFO text -> ({wanted field: value}, {command: (calls, usec, failed_calls)})."""
    head, _, command_section = raw.partition(b"# Commandstats\r\n")
    fields = dict(_FIELD_RE.findall(b"\r\n" + head))
    commands: dict[str, tuple[int, int, int]] = {}
    for name, calls, usec, rest in _CMDSTAT_RE.findall(command_section):
        failed = sum(int(n) for n in _FAILED_RE.findall(rest))
        commands[name.decode("ascii", "replace")] = (int(calls), int(usec), failed)
    return fields, commands


def parse_latency_histogram(reply: Any) -> dict[str, dict[int, int]]:
    """The RESP2 reply of LATENCY HISTOGRAM -> {command: {upper_usec: cumulative_count}}."""
    out: dict[str, dict[int, int]] = {}
    if not isinstance(reply, list):
        return out
    for i in range(0, len(reply) - 1, 2):
        name = reply[i].decode("ascii", "replace") if isinstance(reply[i], bytes) else str(reply[i])
        body = reply[i + 1]
        if not isinstance(body, list):
            continue
        details = dict(zip(body[::2], body[1::2], strict=False))
        buckets = details.get(b"histogram_usec") or []
        out[name] = {int(buckets[j]): int(buckets[j + 1]) for j in range(0, len(buckets) - 1, 2)}
    return out


def field_int(fields: dict[bytes, bytes], key: bytes) -> int | None:
    value = fields.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return int(float(value))


def field_float(fields: dict[bytes, bytes], key: bytes) -> float | None:
    value = fields.get(key)
    return float(value) if value is not None else None


def field_text(fields: dict[bytes, bytes], key: bytes) -> str | None:
    value = fields.get(key)
    return value.decode("utf-8", "replace") if value is not None else None


def persistence_summary(fields: dict[bytes, bytes]) -> str:
    parts = []
    if fields.get(b"aof_enabled") == b"1":
        parts.append("aof")
    if field_int(fields, b"rdb_last_save_time") and fields.get(b"rdb_changes_since_last_save") is not None:
        status = field_text(fields, b"rdb_last_bgsave_status") or "?"
        parts.append(f"rdb (last save {status})")
    return ", ".join(parts) or "none"

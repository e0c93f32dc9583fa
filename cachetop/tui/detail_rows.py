"""The detail view's tables as plain data: command stats, slowlog, clients, server facts.

Pure code (no Textual), tested with plain values. Names from the server go through
display_key: they are shown escaped and cut, never interpreted.
"""

from __future__ import annotations

from cachetop.model import InstanceMetrics
from cachetop.tui.columns import Column
from cachetop.tui.inspect import Details
from cachetop.tui.overview_rows import Row
from cachetop.util import format as fmt
from cachetop.util.safe_text import display_key

COMMAND_COLUMNS = (
    Column("cmd", "command", 18, 0, right=False),
    Column("calls", "calls/s", 8, 0),
    Column("usec", "µs/call", 8, 0),
    Column("failed", "failed/s", 8, 0),
    Column("p50", "p50", 7, 0),
    Column("p99", "p99", 7, 0),
)
# Widths fit 80 columns with the cell padding (2 a column) and a scrollbar: a wider value is
# cut with … by display_key to its column's width, never by the screen's edge.
SLOWLOG_COLUMNS = (
    Column("id", "id", 5, 0),
    Column("when", "ago", 6, 0),
    Column("took", "took", 7, 0),
    Column("cmd", "command", 10, 0, right=False),
    Column("key", "key", 18, 0, right=False),
    Column("client", "client", 15, 0, right=False),
)
CLIENT_COLUMNS = (
    Column("addr", "address", 19, 0, right=False),
    Column("name", "name", 18, 0, right=False),
    Column("age", "age", 6, 0),
    Column("idle", "idle", 6, 0),
    Column("cmd", "last cmd", 9, 0, right=False),
    Column("omem", "omem", 6, 0),
)
FACT_COLUMNS = (Column("fact", "fact", 18, 0, right=False), Column("value", "value", 52, 0, right=False))
WIDTH = {
    f"{table}.{c.key}": c.width
    for table, cols in (("slow", SLOWLOG_COLUMNS), ("client", CLIENT_COLUMNS), ("fact", FACT_COLUMNS))
    for c in cols
}


def command_rows(inst: InstanceMetrics, limit: int = 50) -> list[Row]:
    stats = sorted(inst.commands.items(), key=lambda kv: kv[1].calls_per_sec, reverse=True)[:limit]
    rows = []
    for name, stat in stats:
        usec = None if stat.usec_per_call is None else f"{stat.usec_per_call:.1f}"
        failed_level = "bad" if stat.failed_per_sec > 0 else None
        rows.append(
            Row(
                f"cmd:{name}",
                {
                    "cmd": (display_key(name, 18), None, ""),
                    "calls": (fmt.rate(stat.calls_per_sec), None, ""),
                    "usec": (usec or fmt.NA, None, ""),
                    "failed": (fmt.rate(stat.failed_per_sec), failed_level, ""),
                    "p50": (fmt.ms(stat.p50_ms), None, ""),
                    "p99": (fmt.ms(stat.p99_ms), None, ""),
                },
            )
        )
    return rows


def slowlog_rows(details: Details, now: float) -> list[Row]:
    rows = []
    for entry in details.slowlog:
        rows.append(
            Row(
                f"slow:{entry.id}",
                {
                    "id": (str(entry.id), None, ""),
                    "when": (fmt.duration(max(0.0, now - entry.started)), None, ""),
                    "took": (
                        fmt.ms(entry.duration_us / 1000),
                        "bad" if entry.duration_us >= 100_000 else None,
                        "",
                    ),
                    "cmd": (display_key(entry.command, WIDTH["slow.cmd"]), None, ""),
                    "key": (display_key(entry.key, WIDTH["slow.key"]), None, ""),
                    "client": (display_key(entry.client, WIDTH["slow.client"]), None, "dim"),
                },
            )
        )
    return rows


def client_rows(details: Details) -> list[Row]:
    rows = []
    for client in details.clients:
        ours = client.own or client.viewer
        mark = " (us)" if client.own else " (other cachetop)" if client.viewer else ""
        # Whole in the row (tests and wide screens); the table cuts it to its column with ….
        name = display_key(client.name, 24) + mark
        rows.append(
            Row(
                f"client:{client.id}",
                {
                    "addr": (display_key(client.addr, WIDTH["client.addr"]), None, "dim" if ours else ""),
                    "name": (name, None, "dim" if ours else ""),
                    "age": (fmt.NA if client.age_s is None else fmt.duration(client.age_s), None, ""),
                    "idle": (fmt.duration(client.idle_s), None, ""),
                    "cmd": (display_key(client.cmd, WIDTH["client.cmd"]), None, ""),
                    "omem": (fmt.size(client.omem), "bad" if client.omem > 8 << 20 else None, ""),
                },
            )
        )
    return rows


def clients_note(details: Details) -> str:
    """The line above the Clients table: how many, and how many are cachetop's."""
    if details.error:
        return details.error
    ours = sum(1 for c in details.clients if c.own)
    others = sum(1 for c in details.clients if c.viewer)
    note = f"{len(details.clients)} connection(s), {ours} of them this cachetop's"
    if others:
        note += f", {others} another cachetop's"
    if details.clients and details.clients[0].age_s is None:
        note += "; memcached does not report connection ages"
    return note


def commands_note(inst: InstanceMetrics) -> str:
    """Why the Commands table is empty, when it is."""
    if inst.kind == "memcached":
        return (
            "memcached keeps no per-command statistics: its operations (gets, sets, deletes...)"
            " are in ops/s and the charts"
        )
    if not inst.commands:
        return "no commands in the window besides cachetop's own"
    return ""


FACT_LABELS = (
    ("version", "version"),
    ("server", "server"),
    ("role", "role"),
    ("uptime_s", "uptime"),
    ("maxmemory_policy", "maxmemory-policy"),
    ("persistence", "persistence"),
    ("mem_fragmentation_ratio", "fragmentation"),
    ("connected_slaves", "replicas"),
    ("curr_items", "items"),
    ("pid", "pid"),
    ("foreign_monitors", "foreign MONITOR"),
    ("other_viewers", "other cachetop"),
)


def fact_rows(inst: InstanceMetrics) -> list[Row]:
    facts = dict(inst.facts)
    pairs: list[tuple[str, str]] = [
        ("address", inst.address),
        ("kind", inst.kind),
        ("status", str(inst.status)),
    ]
    if inst.error:
        pairs.append(("reason", inst.error))
    if inst.tags:
        pairs.append(("tags", ", ".join(inst.tags)))
    for key, label in FACT_LABELS:
        if key in facts:
            value = facts.pop(key)
            pairs.append(
                (label, fmt.duration(float(value)) if key == "uptime_s" and value.isdigit() else value)
            )
    limit = inst.metrics.get("memory_max_bytes")
    if limit is not None:
        source = " (host memory: no maxmemory)" if inst.memory_max_from == "system" else ""
        pairs.append(("memory limit", fmt.size(limit) + source))
    for key in sorted(facts):
        pairs.append((key.removeprefix("setting_"), facts[key]))
    return [
        Row(
            f"fact:{i}",
            {
                "fact": (display_key(label, WIDTH["fact.fact"]), None, "bold"),
                "value": (display_key(value, WIDTH["fact.value"]), None, ""),
            },
        )
        for i, (label, value) in enumerate(pairs)
    ]

"""The memcached keyspace: `lru_crawler metadump all`, complete and exact, not a sample.

The crawler lists every item as `key=<url-encoded> exp=<unix s or -1> la=<unix s> cas=N
fetch=yes|no cls=N size=N` (size: the item's whole footprint in its slab, as `stats` bytes adds
up) and ends with END. It runs in a background thread of the server and touches neither the LRU
nor get_hits/get_misses; `stats` and `lru_crawler` are not among the commands ops/s is made of.
One connection, closed at the end. Values are not read: memcached has no read that leaves both
the LRU and the hit counters alone, so the compression figures are left out for memcached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from cachetop.analysis.keyspace.cliffs import Expiry, find_cliffs
from cachetop.analysis.keyspace.estimate import KeyFacts, estimate_prefix
from cachetop.analysis.keyspace.redis_conn import KeyspaceError
from cachetop.analysis.keyspace.report import InstanceReport, KeyspaceProgress
from cachetop.engine.config import InstanceConfig
from cachetop.hotkeys.conn import close_stream, open_stream
from cachetop.metrics.prefix import PrefixRoller

BUSY_RETRIES = 20  # the crawler serves one dump at a time: wait for another's to end
MAX_LINE = 1 << 16


def parse_metadump_line(line: bytes) -> tuple[bytes, int, int, int, int] | None:
    """(key, exp, la, cls, size) from one metadump line; None for anything else."""
    fields = {}
    for part in line.split(b" "):
        name, sep, value = part.partition(b"=")
        if sep:
            fields[name] = value
    try:
        return (
            unquote_to_bytes(fields[b"key"]),
            int(fields[b"exp"]),
            int(fields[b"la"]),
            int(fields.get(b"cls", b"0")),
            int(fields[b"size"]),
        )
    except (KeyError, ValueError):
        return None


async def _server_time(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
) -> tuple[int, int]:
    """(server's unix time, curr_items) from `stats`."""
    writer.write(b"stats\r\n")
    now = items = 0
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line or line.startswith(b"END") or line.startswith(b"ERROR"):
            return now, items
        parts = line.split()
        if len(parts) == 3 and parts[1] == b"time":
            now = int(parts[2])
        elif len(parts) == 3 and parts[1] == b"curr_items":
            items = int(parts[2])


async def analyse_memcached(
    inst: InstanceConfig,
    *,
    timeout: float = 5.0,
    progress: Callable[[KeyspaceProgress], None] | None = None,
    cancel: asyncio.Event | None = None,
    wall: Callable[[], float] = time.time,
) -> InstanceReport:
    tell = progress or (lambda _p: None)
    cancel = cancel or asyncio.Event()
    started, started_at = time.monotonic(), wall()
    roller = PrefixRoller()
    facts: dict[bytes, list[KeyFacts]] = {}
    error = None
    complete = False
    listed = 0
    items = None
    try:
        reader, writer = await open_stream(inst, timeout)
    except Exception as exc:
        raise KeyspaceError(f"{inst.target.redacted_url}: cannot connect ({exc})") from None
    try:
        server_now, items = await _server_time(reader, writer, timeout)
        offset = wall() - server_now if server_now else 0.0
        for attempt in range(BUSY_RETRIES):
            writer.write(b"lru_crawler metadump all\r\n")
            first = await asyncio.wait_for(reader.readline(), timeout)
            if not first.startswith(b"BUSY"):
                break
            await asyncio.sleep(0.05 * (attempt + 1))
        else:
            raise KeyspaceError(f"{inst.target.redacted_url}: the LRU crawler stayed busy; try again")
        line = first
        while True:
            if not line:
                raise KeyspaceError(f"{inst.target.redacted_url}: the server closed the connection")
            if line.startswith(b"END"):
                complete = True
                break
            if line.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
                said = line.strip().decode(errors="replace")[:200]
                raise KeyspaceError(f"{inst.target.redacted_url}: metadump refused: {said}")
            parsed = parse_metadump_line(line.rstrip(b"\r\n"))
            if parsed is not None:
                key, exp, la, cls, size = parsed
                ttl = None if exp < 0 else float(exp - server_now)
                facts.setdefault(roller.rollup(key), []).append(
                    KeyFacts(
                        key=key,
                        bytes=size,
                        type="item",
                        encoding=f"slab class {cls}",
                        expires_at=None if exp < 0 else exp + offset,
                        ttl_s=ttl,
                        idle_s=float(max(0, server_now - la)),
                    )
                )
                listed += 1
                if listed % 10_000 == 0:
                    tell(KeyspaceProgress(listed, items, listed, "metadump", time.monotonic() - started))
                    if cancel.is_set():
                        break
            line = await asyncio.wait_for(reader.readline(), timeout)
    except (TimeoutError, OSError, ValueError) as exc:
        error = f"{inst.target.redacted_url}: metadump failed ({type(exc).__name__})"
    except KeyspaceError as exc:
        error = str(exc)
    finally:
        await close_stream(writer)
    now = wall()
    estimates, expiries = [], []
    for prefix, group in facts.items():
        est = estimate_prefix(prefix, len(group), listed, None, group)
        estimates.append(est)
        expiries += [Expiry(f.expires_at, prefix, 1.0, len(group), len(group)) for f in group if f.expires_at]
    notes = ["memcached: values are not read (no read leaves the LRU and get_hits alone)"]
    if not complete:
        notes.insert(0, f"the dump stopped after {listed:,} items: figures cover those only")
    tell(KeyspaceProgress(listed, items, listed, "done", time.monotonic() - started))
    return InstanceReport(
        name=inst.name,
        kind="memcached",
        source="metadump",
        keys_total=items,
        keys_scanned=listed,
        keys_sampled=listed,
        complete=complete,
        started_at=started_at,
        elapsed_s=time.monotonic() - started,
        prefixes=estimates,
        cliffs=find_cliffs(expiries, now),
        notes=notes,
        values={"read": 0, "method": None, "skipped_types": {}, "skipped_too_big": 0},
        idle_source="last_access",
        error=error,
    )

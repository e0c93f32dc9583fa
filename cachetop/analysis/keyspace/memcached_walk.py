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
import re
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
READ_CHUNK = 1 << 18
DUMPS = 3  # a dump that listed fewer items than the server holds is taken again, this often at most


_LINE = re.compile(rb"key=(\S*) exp=(-?\d+) la=(\d+) cas=\d+ fetch=\w+ cls=(\d+) size=(\d+)")


def parse_metadump_line(line: bytes) -> tuple[bytes, int, int, int, int] | None:
    """(key, exp, la, cls, size) from one metadump line; None for anything else."""
    m = _LINE.match(line)
    if m is None:
        return None
    key = m.group(1)
    return (
        unquote_to_bytes(key) if b"%" in key else key,
        int(m.group(2)),
        int(m.group(3)),
        int(m.group(4)),
        int(m.group(5)),
    )


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


class _Dump:
    """One metadump's items, read in chunks (a line at a time costs a task per item)."""

    def __init__(self, server_now: int) -> None:
        self.server_now = server_now
        self.roller = PrefixRoller()
        self.facts: dict[bytes, list[KeyFacts]] = {}
        self.listed = 0
        self.complete = False

    def add(self, line: bytes) -> None:
        parsed = parse_metadump_line(line)
        if parsed is None:
            return
        key, exp, la, cls, size = parsed
        self.facts.setdefault(self.roller.rollup(key), []).append(
            KeyFacts(
                key=key,
                bytes=size,
                type="item",
                encoding=f"slab class {cls}",
                # The Unix second the application set (memcached's clock ticks once a second).
                expires_at=None if exp < 0 else float(exp),
                ttl_s=None if exp < 0 else float(exp - self.server_now),
                idle_s=float(max(0, self.server_now - la)),
            )
        )
        self.listed += 1


async def _dump(
    inst: InstanceConfig,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    dump: _Dump,
    timeout: float,
    tell: Callable[[int], None],
    cancel: asyncio.Event,
) -> None:
    for attempt in range(BUSY_RETRIES):
        writer.write(b"lru_crawler metadump all\r\n")
        first = await asyncio.wait_for(reader.readline(), timeout)
        if not first.startswith(b"BUSY"):
            break
        await asyncio.sleep(0.05 * (attempt + 1))
    else:
        raise KeyspaceError(f"{inst.target.redacted_url}: the LRU crawler stayed busy; try again")
    if first.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
        said = first.strip().decode(errors="replace")[:200]
        raise KeyspaceError(f"{inst.target.redacted_url}: metadump refused: {said}")
    pending = first
    while True:
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.startswith(b"END"):
                dump.complete = True
                return
            dump.add(line.rstrip(b"\r"))
        if len(pending) > MAX_LINE:
            raise KeyspaceError(f"{inst.target.redacted_url}: a metadump line exceeded {MAX_LINE} bytes")
        tell(dump.listed)
        if cancel.is_set():
            return
        chunk = await asyncio.wait_for(reader.read(READ_CHUNK), timeout)
        if not chunk:
            raise KeyspaceError(f"{inst.target.redacted_url}: the server closed the connection")
        pending += chunk


async def analyse_memcached(
    inst: InstanceConfig,
    *,
    timeout: float = 5.0,
    progress: Callable[[KeyspaceProgress], None] | None = None,
    cancel: asyncio.Event | None = None,
    wall: Callable[[], float] = time.time,
) -> InstanceReport:
    report_progress = progress or (lambda _p: None)
    cancel = cancel or asyncio.Event()
    started, started_at = time.monotonic(), wall()
    error = None
    items = None
    dump = _Dump(0)

    def tell(listed: int) -> None:
        report_progress(KeyspaceProgress(listed, items, listed, "metadump", time.monotonic() - started))

    try:
        reader, writer = await open_stream(inst, timeout)
    except Exception as exc:
        raise KeyspaceError(f"{inst.target.redacted_url}: cannot connect ({exc})") from None
    try:
        for _ in range(DUMPS):
            server_now, items = await _server_time(reader, writer, timeout)
            dump = _Dump(server_now)
            await _dump(inst, reader, writer, dump, timeout, tell, cancel)
            # Items moving between LRU segments while the crawler passes can be missed: on a
            # server whose item count did not change, a short dump is taken again.
            _, items_after = await _server_time(reader, writer, timeout)
            if cancel.is_set() or dump.listed >= items or items_after != items:
                break
    except (TimeoutError, OSError, ValueError) as exc:
        error = f"{inst.target.redacted_url}: metadump failed ({type(exc).__name__})"
    except KeyspaceError as exc:
        error = str(exc)
    finally:
        await close_stream(writer)
    facts, listed, complete = dump.facts, dump.listed, dump.complete
    now = wall()
    estimates, expiries = [], []
    for prefix, group in facts.items():
        est = estimate_prefix(prefix, len(group), listed, None, group)
        estimates.append(est)
        expiries += [Expiry(f.expires_at, prefix, 1.0, len(group), len(group)) for f in group if f.expires_at]
    notes = ["memcached: values are not read (no read leaves the LRU and get_hits alone)"]
    if not complete:
        notes.insert(0, f"the dump stopped after {listed:,} items: figures cover those only")
    elif items is not None and listed != items:
        notes.insert(
            0, f"the crawler listed {listed:,} of {items:,} items (items that moved while it passed)"
        )
    report_progress(KeyspaceProgress(listed, items, listed, "done", time.monotonic() - started))
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

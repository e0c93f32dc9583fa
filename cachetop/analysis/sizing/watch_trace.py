"""memcached `watch fetchers mutations` lines into a sampled, ordered key stream (shards.py), fast.

The hot-key parser (hotkeys/watch_parser.py) runs Python per line; a busy memcached writes 200,000
lines/s and drops what its watcher does not read in time (`skipped=N`), which costs the trace reads.
Here one C-level regex pass finds the lines, C-level comprehensions count them, and Python runs only
per distinct key of a chunk and per line of a kept key.

A store first looks its key up, so the server logs an `item_get ... not_found` right before the
`item_store` of the same key on the same connection (cfd): that lookup is part of the write, not a
read. So a kept key's get is held per connection until the connection's next kept line: a store of
the same key makes it the store's lookup; anything else makes it a read. Counting all reads: every
get line is a read except one per store line.

A store that follows a get the server missed is the client's fill: their gap gives how long a
miss stays in flight (shards.py, in_flight.py). A get the server hit is timed to no store, so a
client that rewrites a key after reading it is not taken for a slow fill.
"""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import unquote_to_bytes

from cachetop.analysis.sizing.shards import SampledTrace, SpatialFilter

_LINE = re.compile(
    rb"^(?:ts=(\S+) gid=\d+ type=item_(get|store) key=(\S+) status=(\S+)[^\r\n]*? cfd=(\d+)[^\r\n]*"
    rb"|skipped=(\d+)[^\r\n]*)\r?$",
    re.MULTILINE,
)


class WatchTraceParser:
    def __init__(self, trace: SampledTrace, keep: SpatialFilter) -> None:
        trace.tracks_writes = True
        self.trace = trace
        self.filter = keep
        self.lines = 0
        self.skipped = 0
        # cfd -> a kept key's get, not yet placed: (key, time, found)
        self._pending: dict[bytes, tuple[bytes, float, bool]] = {}

    def feed(self, data: bytes) -> bytes:
        """Parses the complete lines of `data`; returns the partial last line."""
        end = data.rfind(b"\n") + 1
        if end == 0:
            return data
        rows = _LINE.findall(data, 0, end)
        kinds = Counter(r[1] for r in rows)
        self.lines += kinds[b"get"] + kinds[b"store"]
        self.skipped += sum(int(r[5]) for r in rows if r[5])
        self.trace.reads_total += max(0, kinds[b"get"] - kinds[b"store"])
        self.trace.writes_total += kinds[b"store"]
        self.trace.count_all([r[2] for r in rows if r[1] == b"get"])
        if kinds[b"store"] and self.trace.all_reads is not None:  # a store's own lookup is no read
            self.trace.all_reads.subtract([r[2] for r in rows if r[1] == b"store"])
        keep = self.filter.keep
        kept = {k for k in {r[2] for r in rows if r[1]} if keep(k)}
        if kept:
            for ts, kind, key, status, cfd, _skipped in [r for r in rows if r[2] in kept]:
                self._kept_line(float(ts), kind, key, cfd, status == b"found")
        return data[end:]

    def _kept_line(self, at: float, kind: bytes, raw: bytes, cfd: bytes, found: bool) -> None:
        key = unquote_to_bytes(raw) if b"%" in raw else raw
        before = self._pending.pop(cfd, None)
        if kind == b"get":
            if before is not None:
                self._read(*before)
            self._pending[cfd] = (key, at, found)
        else:
            if before is not None and before[0] != key:
                self._read(*before)
            self.trace.add_write(key, at, 0)

    def _read(self, key: bytes, at: float, found: bool) -> None:
        self.trace.add_read(key, at, hit=found)

    def flush(self) -> None:
        """The gets still held are reads (no store followed them)."""
        for pending in sorted(self._pending.values(), key=lambda p: p[1]):
            self._read(*pending)
        self._pending.clear()

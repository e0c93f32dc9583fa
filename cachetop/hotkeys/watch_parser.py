"""Parsing memcached `watch fetchers mutations` output (memcached 1.6).

    ts=1795840375.670858 gid=2 type=item_get key=foo status=not_found clsid=0 cfd=25 size=0
    ts=1795840375.670867 gid=3 type=item_store key=foo status=stored cmd=set ttl=0 clsid=1 cfd=25 size=3
    skipped=12

Keys are URL-encoded. A store first looks the key up, so the server logs an `item_get` right
before the `item_store` of the same key on the same connection (cfd); that lookup is part of the
write and is not counted as a read or a miss. `skipped=N` says the server dropped N lines because
we did not keep up (it never slows down for a watcher): we report the drop rate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from cachetop.hotkeys.monitor_parser import READ, WRITE

_LINE = re.compile(
    rb"^(?:ts=\S+ gid=\d+ type=item_(get|store) key=(\S+) status=(\S+)[^\r\n]*? cfd=(\d+)[^\r\n]*"
    rb"|skipped=(\d+)[^\r\n]*)\r?$",
    re.MULTILINE,
)

HIT_STATUSES = frozenset({b"found"})


@dataclass(slots=True)
class WatchResult:
    # key -> [count, reads, writes, hits, misses]
    counts: dict[bytes, list[int]] = field(default_factory=dict)
    # (key, client, READ/WRITE, miss) in arrival order, for the stampede detector
    accesses: list[tuple[bytes, bytes, int, bool]] = field(default_factory=list)
    lines: int = 0
    skipped: int = 0


class WatchParser:
    def __init__(self) -> None:
        # A not-yet-counted item_get per connection: it may turn out to be part of a store.
        self._pending: dict[bytes, tuple[bytes, bool]] = {}

    def feed(self, data: bytes, out: WatchResult) -> bytes:
        end = data.rfind(b"\n") + 1
        if end == 0:
            return data
        pending = self._pending
        carried = dict(pending)
        for kind, raw_key, status, cfd, skipped in _LINE.findall(data, 0, end):
            if skipped:
                out.skipped += int(skipped)
                continue
            out.lines += 1
            key = unquote_to_bytes(raw_key) if b"%" in raw_key else raw_key
            before = pending.pop(cfd, None)
            if kind == b"get":
                if before is not None:
                    self._count(out, before[0], cfd, READ, before[1])
                pending[cfd] = (key, status in HIT_STATUSES)
            else:
                if before is not None and before[0] != key:
                    self._count(out, before[0], cfd, READ, before[1])
                self._count(out, key, cfd, WRITE, False)
        # A lookup left pending since the previous chunk had its chance to meet its store.
        for cfd, item in carried.items():
            if pending.get(cfd) is item:
                del pending[cfd]
                self._count(out, item[0], cfd, READ, item[1])
        return data[end:]

    def flush(self, out: WatchResult) -> None:
        """Counts the lookups still pending (call when a batch is old enough: no store followed)."""
        for cfd, (key, hit) in self._pending.items():
            self._count(out, key, cfd, READ, hit)
        self._pending.clear()

    @staticmethod
    def _count(out: WatchResult, key: bytes, cfd: bytes, kind: int, hit: bool) -> None:
        entry = out.counts.get(key)
        if entry is None:
            out.counts[key] = entry = [0, 0, 0, 0, 0]
        entry[0] += 1
        if kind == READ:
            entry[1] += 1
            entry[3 if hit else 4] += 1
            out.accesses.append((key, cfd, READ, not hit))
        else:
            entry[2] += 1
            out.accesses.append((key, cfd, WRITE, False))

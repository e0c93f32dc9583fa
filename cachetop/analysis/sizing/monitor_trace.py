"""MONITOR lines into a sampled, ordered key stream (shards.py), for the sizing profile.

The hot-key parser (hotkeys/monitor_parser.py) counts per key and drops the order; a cache
simulation needs every access of a kept key in order, with its time. So this parser subclasses it
(same command table, same own-connection rules, same unquoting) and keeps, per line: the server's
timestamp, whether the command reads or writes, and for a write of a kept key the length of its
value as printed (escapes make it an upper bound: only sizes of a trace without a memory model
use it).
"""

from __future__ import annotations

import re
from collections import Counter
from operator import itemgetter

from cachetop.analysis.sizing.shards import SampledTrace, SpatialFilter
from cachetop.hotkeys.monitor_parser import _NAMING, READ, WRITE, MonitorParser, ParseResult, unquote

_LINE = re.compile(
    rb'^\+(\d+(?:\.\d+)?) \[\d+ ([^\]]*)\] "([^"]*)"(?: (")([^"\\]*(?:\\.[^"\\]*)*)")?([^\r\n]*)',
    re.MULTILINE,
)
_COMMAND = itemgetter(2)
_ARG = re.compile(rb'"([^"\\]*(?:\\.[^"\\]*)*)"')


class SizingParser(MonitorParser):
    def __init__(self, trace: SampledTrace, keep: SpatialFilter) -> None:
        super().__init__()
        trace.tracks_writes = True
        self.trace = trace
        self.filter = keep

    def feed(self, data: bytes, out: ParseResult) -> bytes:
        """Per line only C work (findall, comprehensions, Counter); Python runs per command
        spelling, per distinct key of the chunk, and per line of a kept key."""
        end = data.rfind(b"\n") + 1
        if end == 0:
            return data
        rows = _LINE.findall(data, 0, end)
        out.lines += len(rows)
        own = self.own_clients
        if own:
            kept_rows = [r for r in rows if r[1] not in own]
            out.own += len(rows) - len(kept_rows)
            rows = kept_rows
        trace = self.trace
        single: dict[bytes, int] = {}
        slow: set[bytes] = set()
        for cmd, n in Counter(map(_COMMAND, rows)).items():
            spec = self._spec(cmd)
            if spec is None:
                if cmd.lower() in _NAMING:
                    slow.add(cmd)  # a connection may name itself cachetop*: those go in order
                continue
            if spec[3] not in (READ, WRITE):
                continue
            if spec[1] == 1:
                single[cmd] = spec[3]
                if spec[3] == READ:
                    trace.reads_total += n
                else:
                    trace.writes_total += n
                out.keyed += n
            else:
                slow.add(cmd)
        reads = {c for c, kind in single.items() if kind == READ}
        if reads:
            trace.count_all([r[4] for r in rows if r[2] in reads])
        keep = self.filter.keep
        kept = {k for k in {r[4] for r in rows if r[2] in single} if keep(k)}
        if slow:  # rare (MGET, DEL, a CLIENT SETNAME): every line in order
            for ts, client, cmd, quoted, first, rest in rows:
                if cmd in slow:
                    self._slow_line(ts, client, cmd, quoted, first, rest, out)
                elif first in kept and cmd in single:
                    self._record(first, single[cmd], float(ts), rest)
        else:
            for ts, _client, cmd, _quoted, first, rest in [r for r in rows if r[4] in kept]:
                kind = single.get(cmd)
                if kind is not None:
                    self._record(first, kind, float(ts), rest)
        return data[end:]

    def _record(self, raw: bytes, kind: int, at: float, rest: bytes) -> None:
        key = unquote(raw) if b"\\" in raw else raw
        if kind == READ:
            self.trace.add_read(key, at)
        else:
            value = _ARG.match(rest.lstrip()) if rest else None
            self.trace.add_write(key, at, len(value.group(1)) if value else 0)

    def _slow_line(
        self, ts: bytes, client: bytes, cmd: bytes, quoted: bytes, first: bytes, rest: bytes, out: ParseResult
    ) -> None:
        if client in self.own_clients:
            out.own += 1
            return
        spec = self._spec(cmd)
        if spec is None:
            if cmd.lower() in _NAMING:
                self._learn_name(client, first, rest)
            return
        if not quoted:
            return
        kind = spec[3]
        for raw in self._keys(first, rest, spec) if rest else (first,):
            out.keyed += 1
            if kind == READ:
                self.trace.reads_total += 1
                self.trace.count_all((raw,))
            else:
                self.trace.writes_total += 1
            if self.filter.keep(raw):
                key = unquote(raw) if b"\\" in raw else raw
                if kind == READ:
                    self.trace.add_read(key, float(ts))
                else:
                    self.trace.add_write(key, float(ts), 0)

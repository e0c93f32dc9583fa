"""Parsing Redis MONITOR output fast: one C-level regex pass over each chunk, no per-line readline.

A MONITOR line looks like

    +1700000000.123456 [0 127.0.0.1:54321] "SET" "user:1" "value"

Arguments are quoted by the server (sdscatrepr): `\\"`, `\\\\`, `\\n`, `\\r`, `\\t`, `\\a`, `\\b` and
`\\xHH` for bytes that are not printable, so a line never holds a raw CR or LF and splitting on
newlines is safe. Which arguments are keys, and whether a command reads or writes, comes from the
server's own COMMAND table (first key, last key, step), with a built-in table as a fallback.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

READ, WRITE, OTHER = 0, 1, 2

# (first key position, last key position (negative: from the end), step, READ/WRITE/OTHER)
KeySpec = tuple[int, int, int, int]

_READS_ONE = (
    b"get getrange strlen hget hgetall hmget hexists hkeys hvals hlen lrange lindex llen smembers sismember"
    b" smismember scard zrange zscore zrank zcard zrangebyscore zrevrange ttl pttl type getbit bitcount"
    b" xrange xlen pfcount"
)
_WRITES_ONE = (
    b"set setex psetex setnx getset getdel getex append incr incrby incrbyfloat decr decrby hset hsetnx"
    b" hmset hdel hincrby hincrbyfloat lpush rpush lpop rpop lset ltrim lrem sadd srem spop zadd zrem"
    b" zincrby expire pexpire expireat persist setbit setrange xadd pfadd"
)
# Used when the server will not tell us (COMMAND denied by ACL) and by unit tests.
FALLBACK_COMMANDS: dict[bytes, KeySpec] = {
    **{c: (1, 1, 1, READ) for c in _READS_ONE.split()},
    **{c: (1, -1, 1, READ) for c in (b"mget", b"exists", b"touch")},
    **{c: (1, 1, 1, WRITE) for c in _WRITES_ONE.split()},
    **{c: (1, -1, 1, WRITE) for c in (b"del", b"unlink")},
    **{c: (1, -1, 2, WRITE) for c in (b"mset", b"msetnx")},
}


OWN_NAME_PREFIX = b"cachetop"
_NAMING = (b"client", b"hello")


def command_table_from_redis(reply: Mapping[Any, Any]) -> dict[bytes, KeySpec]:
    """Builds the table from redis-py's parsed COMMAND reply ({name: {flags, first_key_pos, ...}})."""
    table: dict[bytes, KeySpec] = {}
    for name, info in reply.items():
        name_b = name.encode() if isinstance(name, str) else bytes(name)
        first = int(info.get("first_key_pos") or 0)
        if first <= 0:
            continue  # no keys (PING, INFO), or keys we cannot place (EVAL): not counted
        flags = {f.decode() if isinstance(f, bytes) else str(f) for f in info.get("flags") or ()}
        kind = WRITE if "write" in flags else READ if "readonly" in flags else OTHER
        table[name_b.lower()] = (
            first,
            int(info.get("last_key_pos") or first),
            int(info.get("step_count") or 1),
            kind,
        )
    return table


# One match per line: client address, command name, the opening quote of the first argument (empty
# when the command has no argument: that is how `GET ""`, the empty key, differs from a bare
# command), the first argument (raw, still escaped) and the rest of the line. MULTILINE so `^`/`$`
# work per line inside a chunk.
_LINE = re.compile(
    rb'^\+[^ ]* \[\d+ ([^\]]*)\] "([^"]*)"(?: (")([^"\\]*(?:\\.[^"\\]*)*)")?([^\r\n]*)',
    re.MULTILINE,
)
_ARG = re.compile(rb'"([^"\\]*(?:\\.[^"\\]*)*)"')
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|.)", re.DOTALL)
_SIMPLE = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b", b'"': b'"', b"\\": b"\\"}


def _unescape_one(m: re.Match[bytes]) -> bytes:
    code = m.group(1)
    if len(code) == 3:
        return bytes([int(code[1:], 16)])
    return _SIMPLE.get(code, code)


def unquote(arg: bytes) -> bytes:
    """Undoes the server's sdscatrepr quoting of one argument."""
    if b"\\" not in arg:
        return arg
    return _ESCAPE.sub(_unescape_one, arg)


@dataclass(slots=True)
class ParseResult:
    # key -> [count, reads, writes, hits, misses] (MONITOR sees no replies: hits/misses stay 0)
    counts: dict[bytes, list[int]] = field(default_factory=dict)
    # (key, client) of single-key reads and writes, for the stampede detector. Keys are still
    # quoted as the server printed them (unquote() when showing one); order within a chunk is lost.
    reads: list[tuple[bytes, bytes]] = field(default_factory=list)
    writes: list[tuple[bytes, bytes]] = field(default_factory=list)
    lines: int = 0  # MONITOR lines parsed, ours included
    own: int = 0  # lines from cachetop's own connections, left out
    keyed: int = 0  # key accesses counted


_CLIENT = _KEY = itemgetter(0)
_COMMAND = itemgetter(1)


def _merge(into: dict[bytes, list[int]], counts: dict[bytes, list[int]]) -> None:
    for key, c in counts.items():
        entry = into.get(key)
        if entry is None:
            into[key] = c
        else:
            for i in range(5):
                entry[i] += c[i]


class MonitorParser:
    """Turns chunks of MONITOR output into per-key counts. feed() returns bytes not yet parsed
    (a partial last line) that must be prepended to the next chunk.

    A saturated server writes 300k+ lines/s, so the per-line work is done by C code (one regex
    pass, Counter, set operations); Python runs once per distinct (command, key) of a chunk, and
    per line only for the rare commands with several keys or ones that name a connection."""

    def __init__(
        self, commands: Mapping[bytes, KeySpec] | None = None, own_clients: Iterable[bytes] = ()
    ) -> None:
        self.commands: dict[bytes, KeySpec] = dict(commands or FALLBACK_COMMANDS)
        self.own_clients: set[bytes] = set(own_clients)
        self._by_spelling: dict[bytes, KeySpec | None] = {}

    def _spec(self, cmd: bytes) -> KeySpec | None:
        spec = self._by_spelling.get(cmd, 0)
        if spec == 0:
            spec = self.commands.get(cmd.lower())
            if len(self._by_spelling) < 4096:
                self._by_spelling[cmd] = spec
        return spec  # type: ignore[return-value]

    def feed(self, data: bytes, out: ParseResult) -> bytes:
        end = data.rfind(b"\n") + 1
        if end == 0:
            return data
        rows = _LINE.findall(data, 0, end)
        out.lines += len(rows)
        own = self.own_clients
        if own and not own.isdisjoint(map(_CLIENT, rows)):
            kept = [row for row in rows if row[0] not in own]
            out.own += len(rows) - len(kept)
            rows = kept
        spellings = set(map(_COMMAND, rows))
        if any(cmd.lower() in _NAMING for cmd in spellings):
            # A connection may name itself cachetop* in this chunk: lines after that are ours,
            # so this (rare) chunk goes line by line, in order.
            out.keyed += self._feed_lines(rows, out)
            return data[end:]
        single: dict[bytes, int] = {}  # spelling -> READ/WRITE/OTHER, for commands with one key
        slow: set[bytes] = set()
        for cmd in spellings:
            spec = self._spec(cmd)
            if spec is None:
                continue
            if spec[1] == 1:
                single[cmd] = spec[3]
            else:
                slow.add(cmd)
        # Per line only C work: list comprehensions and Counter; Python runs per distinct key.
        pairs = ([], [], [])  # (key still quoted, client) of the reads, writes and others
        for kind in {*single.values()}:
            cmds = {c for c, k in single.items() if k == kind}
            # row[2] (the quote) and not row[3] (the key): the empty key is a key too
            pairs[kind].extend((row[3], row[0]) for row in rows if row[1] in cmds and row[2])
        n_reads, n_writes, n_other = (Counter(map(_KEY, p)) for p in pairs)
        keyed = n_reads.total() + n_writes.total() + n_other.total()
        counts = {k: [n, n, 0, 0, 0] for k, n in n_reads.items()}
        for k in n_writes.keys() & counts.keys():
            n = n_writes.pop(k)
            counts[k][0] += n
            counts[k][2] += n
        counts.update({k: [n, 0, n, 0, 0] for k, n in n_writes.items()})
        for k, n in n_other.items():
            counts.setdefault(k, [0, 0, 0, 0, 0])[0] += n
        if b"\\" in data:  # sdscatrepr is one-to-one: unquoting cannot merge two keys
            counts = {(unquote(k) if b"\\" in k else k): v for k, v in counts.items()}
        if out.counts:
            _merge(out.counts, counts)
        else:
            out.counts = counts
        out.reads += pairs[READ]
        out.writes += pairs[WRITE]
        if slow:
            keyed += self._feed_lines([row for row in rows if row[1] in slow], out)
        out.keyed += keyed
        return data[end:]

    def _feed_lines(self, rows: list[tuple[bytes, bytes, bytes, bytes, bytes]], out: ParseResult) -> int:
        """Line by line: commands with several keys (MGET, DEL, MSET), and chunks where a
        connection may name itself."""
        counts = out.counts
        own = self.own_clients
        keyed = 0
        for client, cmd, quoted, first, rest in rows:
            if client in own:
                out.own += 1
                continue
            spec = self._spec(cmd)
            if spec is None:
                if cmd.lower() in _NAMING:
                    self._learn_name(client, first, rest)
                continue
            if not quoted:
                continue  # no argument at all (an empty first argument is the empty key)
            kind = spec[3]
            for raw in self._keys(first, rest, spec) if rest else (first,):
                key = unquote(raw) if b"\\" in raw else raw
                entry = counts.get(key)
                if entry is None:
                    counts[key] = entry = [0, 0, 0, 0, 0]
                entry[0] += 1
                if kind != OTHER:
                    entry[kind + 1] += 1
                if kind == READ:
                    out.reads.append((raw, client))
                elif kind == WRITE:
                    out.writes.append((raw, client))
                keyed += 1
        return keyed

    def _learn_name(self, client: bytes, first: bytes, rest: bytes) -> None:
        """A connection that names itself cachetop* (CLIENT SETNAME, HELLO ... SETNAME) is ours
        from now on, even if it connected after the sample started."""
        args = [first.lower(), *(a.lower() for a in _ARG.findall(rest))]
        for i, arg in enumerate(args[:-1]):
            if arg == b"setname" and args[i + 1].startswith(OWN_NAME_PREFIX):
                self.own_clients.add(client)

    @staticmethod
    def _keys(first: bytes, rest: bytes, spec: KeySpec) -> list[bytes]:
        args = [first, *_ARG.findall(rest)]
        start, last, step = spec[0], spec[1], spec[2]
        stop = len(args) if last < 0 else last  # args[0] is the first argument (position 1)
        stop += last + 1 if last < 0 else 0
        return args[start - 1 : stop : max(step, 1)]


def command_table_reply(reply: Any) -> dict[bytes, dict[str, Any]]:
    """COMMAND's raw reply (one array per command: name, arity, flags, first key, last key,
    step, ...) in the shape of redis-py's parsed one, for command_table_from_redis."""
    table: dict[bytes, dict[str, Any]] = {}
    for entry in reply if isinstance(reply, list) else ():
        if not isinstance(entry, list) or len(entry) < 6 or not isinstance(entry[0], bytes):
            continue
        flags = entry[2] if isinstance(entry[2], list) else []
        table[entry[0]] = {
            "flags": flags,
            "first_key_pos": entry[3],
            "last_key_pos": entry[4],
            "step_count": entry[5],
        }
    return table

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


# One match per line: client address, command name, first argument (raw, still escaped) and the
# rest of the line. MULTILINE so `^`/`$` work per line inside a chunk.
_LINE = re.compile(
    rb'^\+[^ ]* \[\d+ ([^\]]*)\] "([^"]*)"(?: "([^"\\]*(?:\\.[^"\\]*)*)")?([^\r\n]*)',
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
    # (key, client, READ/WRITE) in arrival order, for the stampede detector
    accesses: list[tuple[bytes, bytes, int]] = field(default_factory=list)
    lines: int = 0  # MONITOR lines parsed, ours included
    own: int = 0  # lines from cachetop's own connections, left out
    keyed: int = 0  # key accesses counted


class MonitorParser:
    """Turns chunks of MONITOR output into per-key counts. feed() returns bytes not yet parsed
    (a partial last line) that must be prepended to the next chunk."""

    def __init__(
        self, commands: Mapping[bytes, KeySpec] | None = None, own_clients: Iterable[bytes] = ()
    ) -> None:
        self.commands: dict[bytes, KeySpec] = dict(commands or FALLBACK_COMMANDS)
        self.own_clients: set[bytes] = set(own_clients)
        self._by_spelling: dict[bytes, KeySpec | None] = {}

    def _spec(self, cmd: bytes) -> KeySpec | None:
        spec = self.commands.get(cmd.lower())
        if len(self._by_spelling) < 4096:
            self._by_spelling[cmd] = spec
        return spec

    def feed(self, data: bytes, out: ParseResult) -> bytes:
        end = data.rfind(b"\n") + 1
        if end == 0:
            return data
        counts = out.counts
        accesses = out.accesses
        own = self.own_clients
        by_spelling = self._by_spelling
        n_lines = 0
        keyed = 0
        for client, cmd, first, rest in _LINE.findall(data, 0, end):
            n_lines += 1
            if client in own:
                out.own += 1
                continue
            spec = by_spelling.get(cmd, 0)
            if spec == 0:
                spec = self._spec(cmd)
            if spec is None:
                if cmd.lower() in _NAMING:
                    self._learn_name(client, first, rest)
                continue
            if not first:
                continue
            kind = spec[3]
            if spec[1] == 1 or not rest:
                keys: Iterable[bytes] = (first,)
            else:
                keys = self._keys(first, rest, spec)
            for raw in keys:
                key = unquote(raw) if b"\\" in raw else raw
                entry = counts.get(key)
                if entry is None:
                    counts[key] = (
                        [1, 1, 0, 0, 0]
                        if kind == READ
                        else [1, 0, 1, 0, 0]
                        if kind == WRITE
                        else [1, 0, 0, 0, 0]
                    )
                else:
                    entry[0] += 1
                    if kind != OTHER:
                        entry[kind + 1] += 1  # READ -> reads, WRITE -> writes
                accesses.append((key, client, kind))
                keyed += 1
        out.keyed += keyed
        out.lines += n_lines
        return data[end:]

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

"""How much of one reply cachetop will read: a cap per command, so a hostile or broken server
(or something that is not a cache at all) cannot grow cachetop's memory without bound.

Every redis-py connection cachetop opens parses with CappedAsyncParser / CappedParser (set by
backends/redis_client.py). They charge each reply for what it can cost once parsed: its bytes,
plus ELEMENT_COST for every CRLF in it (each RESP element ends with one, and a parsed element
costs at most about that: an empty list, an error reply object). A reply whose charge passes
its cap ends the read with ReplyTooLarge, and the connection is dropped.

The cap is chosen by command name (REPLY_CAPS) where cachetop knows which command it is
reading, and can be set for a block of code with `reply_cap(...)`. Numbers are in
docs/fleets.md, "Limits that protect cachetop".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from redis._parsers.hiredis import _AsyncHiredisParser, _HiredisParser
from redis.exceptions import RedisError

MIB = 1 << 20
ELEMENT_COST = 160  # bytes: the most one parsed RESP element costs (an error reply object)


@dataclass(frozen=True)
class ReplyCap:
    limit: int  # bytes, as charged (see the module docstring)
    what: str  # the command, as the error names it


# Generous for a real server, small for a memory bound. Measured on Redis 7.0 (charged, as
# above): INFO all 39 KiB, COMMAND 2.4 MiB, COMMAND DOCS 3.6 MiB, LATENCY HISTOGRAM 6 KiB a
# command. CLIENT LIST is about 300-400 bytes a client and has no CRLF inside (32 MiB: about
# 100,000 clients); CLUSTER NODES about 200 bytes a node, CLUSTER SHARDS about 3 KiB charged;
# a SCAN batch holds keys of up to a few KiB each.
DEFAULT_CAP = ReplyCap(16 * MIB, "a command")
REPLY_CAPS: dict[str, ReplyCap] = {
    "info": ReplyCap(4 * MIB, "INFO"),
    "latency|histogram": ReplyCap(16 * MIB, "LATENCY HISTOGRAM"),
    "client|list": ReplyCap(32 * MIB, "CLIENT LIST"),
    "cluster|nodes": ReplyCap(16 * MIB, "CLUSTER NODES"),
    "cluster|shards": ReplyCap(32 * MIB, "CLUSTER SHARDS"),
    "scan": ReplyCap(64 * MIB, "SCAN"),
    "slowlog|get": ReplyCap(16 * MIB, "SLOWLOG GET"),
    "command": ReplyCap(32 * MIB, "COMMAND"),
    "command|docs": ReplyCap(32 * MIB, "COMMAND DOCS"),
    "sentinel": ReplyCap(1 * MIB, "SENTINEL"),  # GET-MASTER-ADDR-BY-NAME: two short strings
}

_current: ContextVar[ReplyCap | None] = ContextVar("cachetop_reply_cap", default=None)


def cap_for(command: str) -> ReplyCap:
    """The cap for a command named as commandstats names it (`info`, `client|list`)."""
    return REPLY_CAPS.get(command, DEFAULT_CAP)


@contextlib.contextmanager
def reply_cap(cap: ReplyCap) -> Iterator[None]:
    """Every reply read in this block (this task or thread) is held to `cap`."""
    token = _current.set(cap)
    try:
        yield
    finally:
        _current.reset(token)


def mib(limit: int) -> str:
    return f"{limit / MIB:g} MiB" if limit >= MIB else f"{limit // 1024} KiB"


class ReplyTooLarge(RedisError):
    """A reply passed its cap: not a cache server, or a hostile one. The message says which."""

    def __init__(self, cap: ReplyCap) -> None:
        super().__init__(
            f"reply to {cap.what} exceeded {mib(cap.limit)}: not a cache server, or a hostile one"
        )
        self.cap = cap


class _Meter:
    """What the reply being read has cost so far; started again by each read_response."""

    __slots__ = ("cap", "charged")

    def __init__(self) -> None:
        self.cap = DEFAULT_CAP
        self.charged = 0

    def start(self) -> None:
        self.cap = _current.get() or DEFAULT_CAP
        self.charged = 0

    def charge(self, data: Any, offset: int, length: int) -> None:
        self.charged += length + ELEMENT_COST * data.count(b"\r\n", offset, offset + length)
        if self.charged > self.cap.limit:
            raise ReplyTooLarge(self.cap)


class _MeteredReader:
    """A hiredis.Reader whose feed() charges the meter first; gets/has_data are the reader's own
    (bound methods, so a reply costs no extra Python call)."""

    def __init__(self, reader: Any, meter: _Meter) -> None:
        self._reader = reader
        self._meter = meter
        self.gets = reader.gets
        self.has_data = reader.has_data

    def feed(self, data: Any, offset: int = 0, length: int = -1) -> None:
        if length < 0:
            length = len(data) - offset
        self._meter.charge(data, offset, length)
        self._reader.feed(data, offset, length)

    def __getattr__(self, name: str) -> Any:  # len, set_encoding...: as the reader has them
        return getattr(self._reader, name)


class CappedAsyncParser(_AsyncHiredisParser):
    """redis-py's asyncio hiredis parser, with every reply held to its cap."""

    def __init__(self, socket_read_size: int) -> None:
        super().__init__(socket_read_size)
        self._meter = _Meter()

    def on_connect(self, connection: Any) -> None:
        super().on_connect(connection)
        self._reader = _MeteredReader(self._reader, self._meter)

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        self._meter.start()
        return await super().read_response(*args, **kwargs)


class CappedParser(_HiredisParser):
    """redis-py's blocking hiredis parser (the actions' connections), every reply capped."""

    def __init__(self, socket_read_size: int) -> None:
        super().__init__(socket_read_size)
        self._meter = _Meter()

    def on_connect(self, connection: Any, **kwargs: Any) -> None:
        super().on_connect(connection, **kwargs)
        self._reader = _MeteredReader(self._reader, self._meter)

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        self._meter.start()
        return super().read_response(*args, **kwargs)

"""The keyspace walk's one connection to a Redis/Valkey server: raw, pipelined, and counted.

One connection, named `cachetop-keyspace`, opened for the analysis and closed at its end (also on
Ctrl-C or an error): the footprint rule allows one more connection per instance while a costly
collector runs. Batches are written as one pipeline and read back with hiredis, so a SCAN of a
million names costs the client about a second, not the dozens of seconds a per-command client
would spend.

What we send is our own traffic, reported the moment it is sent:
- to this process's poller through OwnCounts (commands per name, and the keyspace hits and
  misses our reads cause: PTTL, TYPE, OBJECT and GET are key lookups, measured on Redis 7.0.15
  and Valkey 9.1; SCAN and MEMORY USAGE are not), under the poller's own-traffic gate;
- to other cachetop processes through the client name, which carries the count of commands sent
  on the connection and the hits and misses they caused (backends/viewers.py): each batch starts
  with a CLIENT SETNAME that counts it. The batch's lookups are claimed ahead as hits (what they
  are unless a sampled key vanished meanwhile); a miss found in the replies is claimed by the
  next name, whose hits claim less by as much (a claim never goes down), and a last SETNAME
  before the connection closes settles the misses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import hiredis

from cachetop.backends.redis_client import command_name
from cachetop.backends.viewers import counted_name
from cachetop.engine.config import InstanceConfig
from cachetop.hotkeys.conn import close_stream, open_stream, resp_command
from cachetop.util.aio import OwnTrafficGate

CLIENT_NAME = "cachetop-keyspace"
MAX_BATCH_REPLY = 64 << 20  # bytes; no batch of ours needs more (values are read only when small)
READ_CHUNK = 1 << 16
LINGER_S = 1.0  # the connection stays this long after its last name (see close)


class KeyspaceError(Exception):
    """A failure to show as is: one line, no secrets."""


class OwnCounts:
    """What the analysis sent and caused, cumulative, for a poller's add_own_source:
    `backend.add_own_source("keyspace", own.commands, hits=own.hits, misses=own.misses,
    connections=own.connections)`."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.hit_count = 0
        self.miss_count = 0
        self.error_count = 0
        self.open_connections = 0

    def count(self, command: str, n: int = 1) -> None:
        self.sent[command] = self.sent.get(command, 0) + n

    def commands(self) -> dict[str, int]:
        return dict(self.sent)

    def hits(self) -> int:
        return self.hit_count

    def misses(self) -> int:
        return self.miss_count

    def connections(self) -> int:
        return self.open_connections


class KeyspaceConnection:
    def __init__(
        self,
        inst: InstanceConfig,
        timeout: float,
        own: OwnCounts,
        gate: OwnTrafficGate | None = None,
    ) -> None:
        self.inst = inst
        self.timeout = timeout
        self.own = own
        self.gate = gate
        self.linger_s = LINGER_S
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._sent = 0  # commands the server will have processed on this connection
        self._reads0 = (0, 0)  # own hits/misses when this connection opened
        self._hits_claimed = 0  # hits its name has claimed (never goes down)

    async def open(self) -> None:
        target = self.inst.target
        hello: list[tuple[Any, ...]] = []
        if target.password:
            hello.append(
                ("AUTH", target.username, target.password) if target.username else ("AUTH", target.password)
            )
        if target.db:
            hello.append(("SELECT", target.db))
        try:
            self._reader, self._writer = await open_stream(self.inst, self.timeout)
        except Exception as exc:
            raise KeyspaceError(f"{target.redacted_url}: cannot connect ({exc})") from None
        self.own.open_connections += 1
        self._reads0, self._hits_claimed = (self.own.hit_count, self.own.miss_count), 0
        replies = await self.batch(hello)
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                await self.close()
                raise KeyspaceError(f"{target.redacted_url}: {_first_line(reply)}")

    def _name(self, lookups: int) -> str:
        hits = self.own.hit_count - self._reads0[0]
        misses = self.own.miss_count - self._reads0[1]
        self._hits_claimed = max(self._hits_claimed, hits + lookups)
        return counted_name(CLIENT_NAME, self._sent, (self._hits_claimed, misses))

    async def batch(self, commands: Sequence[Sequence[Any]], *, lookups: int = 0) -> list[Any]:
        """Sends the commands as one pipeline (after a CLIENT SETNAME that counts them, and their
        `lookups`: commands that will count as keyspace hits or misses) and returns their replies
        in order; error replies come back as hiredis.ReplyError values."""
        if self._writer is None or self._reader is None:
            raise KeyspaceError("the keyspace connection is closed")
        self._sent += len(commands) + 1
        payload = [resp_command("CLIENT", "SETNAME", self._name(lookups))]
        payload.extend(resp_command(*c) for c in commands)
        gate = self.gate.shared() if self.gate is not None else contextlib.nullcontext()
        async with gate:
            self.own.count("client|setname")
            for c in commands:
                self.own.count(command_name(c))
            try:
                self._writer.write(b"".join(payload))
                replies = await asyncio.wait_for(self._read(len(commands) + 1), self._deadline(len(commands)))
            except (OSError, TimeoutError, hiredis.ProtocolError) as exc:
                what = "timed out" if isinstance(exc, TimeoutError) else f"failed ({type(exc).__name__})"
                raise KeyspaceError(
                    f"{self.inst.target.redacted_url}: a batch of {len(commands)} commands {what}"
                ) from None
        self.own.error_count += sum(isinstance(r, hiredis.ReplyError) for r in replies)
        if isinstance(replies[0], hiredis.ReplyError):
            raise KeyspaceError(f"{self.inst.target.redacted_url}: CLIENT SETNAME: {_first_line(replies[0])}")
        return replies[1:]

    def _deadline(self, n: int) -> float:
        return self.timeout + n * 0.001  # a big batch of per-key calls may take a while on a busy server

    async def _read(self, n: int) -> list[Any]:
        assert self._reader is not None
        parser = hiredis.Reader()
        replies: list[Any] = []
        received = 0
        while len(replies) < n:
            reply = parser.gets()
            if reply is not False:
                replies.append(reply)
                continue
            chunk = await self._reader.read(READ_CHUNK)
            if not chunk:
                raise KeyspaceError(f"{self.inst.target.redacted_url}: the server closed the connection")
            received += len(chunk)
            if received > MAX_BATCH_REPLY:
                raise KeyspaceError(
                    f"{self.inst.target.redacted_url}: a reply exceeded {MAX_BATCH_REPLY >> 20} MiB; stopped"
                )
            parser.feed(chunk)
        return replies

    async def close(self) -> None:
        try:
            if self._writer is not None and self._sent:
                # The last name settles the misses the last batch found (best effort: the
                # connection may be broken, or the task cancelled), and stays up a moment so that
                # a dashboard polling every second lists it: a name gone before another process
                # lists it never has its last batches taken out there.
                settled = False
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.batch([]), min(self.timeout, 1.0))
                    settled = True
                if settled and self.linger_s > 0:
                    await asyncio.sleep(self.linger_s)
        finally:
            writer, self._writer, self._reader = self._writer, None, None
            if writer is not None:
                self.own.open_connections -= 1
                await close_stream(writer)


def _first_line(reply: Any) -> str:
    return str(reply).splitlines()[0][:200] if str(reply) else "error"

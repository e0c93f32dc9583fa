"""On-demand details for the instance view: the slowlog and the clients.

Textual-free, so it could move to the core as is. These are fetched only while the detail view
is open, on a short-lived connection named like cachetop's own, and every command it sends is
added to the backend's `own_commands`, so ops/s and commandstats never count our look.
Memcached has no slowlog; its `stats conns` lists connections and moves no counter we report.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ResponseError

from cachetop.backends.viewers import (
    TOKEN,
    claim_ahead,
    forget_own,
    is_own_address,
    note_own,
    parse_counted,
)
from cachetop.engine.config import InstanceConfig
from cachetop.hotkeys.conn import SideCommands
from cachetop.util.aio import OwnTrafficGate

CLIENT_NAME = "cachetop"
SLOWLOG_ENTRIES = 20
MAX_CLIENTS = 200


@dataclass(frozen=True, slots=True)
class SlowEntry:
    id: int
    started: int  # unix seconds
    duration_us: int
    command: bytes  # the command name
    key: bytes  # its first argument; the rest may hold values or secrets and is never shown
    client: bytes  # client name, may be empty


@dataclass(frozen=True, slots=True)
class ClientInfo:
    id: str
    addr: str
    name: bytes  # without the command count cachetop's names carry (backends/viewers.py)
    age_s: int | None  # None: the server does not say (memcached)
    idle_s: int
    cmd: str
    omem: int
    own: bool  # one of this cachetop's connections
    viewer: bool = False  # another cachetop process's connection


@dataclass(frozen=True, slots=True)
class Details:
    slowlog: tuple[SlowEntry, ...] = ()
    clients: tuple[ClientInfo, ...] = ()
    supports_slowlog: bool = True
    error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def parse_client_list(raw: bytes) -> list[ClientInfo]:
    """CLIENT LIST lines (`k=v` pairs) -> ClientInfo. Names stay bytes: they are untrusted."""
    out = []
    for line in raw.split(b"\n"):
        line = line.strip()
        if not line:
            continue
        fields: dict[bytes, bytes] = {}
        for pair in line.split(b" "):
            key, _, value = pair.partition(b"=")
            fields[key] = value
        name = fields.get(b"name", b"")
        counted = parse_counted(name)
        own = counted is not None and counted[0] == TOKEN.encode()
        if counted is not None:
            name = name.split(b":", 1)[0]
        out.append(
            ClientInfo(
                id=fields.get(b"id", b"?").decode("ascii", "replace"),
                addr=fields.get(b"addr", b"?").decode("ascii", "replace"),
                name=name,
                age_s=_int(fields.get(b"age")),
                idle_s=_int(fields.get(b"idle")),
                cmd=fields.get(b"cmd", b"").decode("ascii", "replace"),
                omem=_int(fields.get(b"omem")),
                own=own,
                viewer=not own and name.startswith(b"cachetop"),
            )
        )
        if len(out) >= MAX_CLIENTS:
            break
    return out


def parse_slowlog(raw: Any) -> list[SlowEntry]:
    out = []
    for item in raw or ():
        if not isinstance(item, list | tuple) or len(item) < 4:
            continue
        args = list(item[3]) if isinstance(item[3], list | tuple) else []
        out.append(
            SlowEntry(
                id=int(item[0]),
                started=int(item[1]),
                duration_us=int(item[2]),
                command=_bytes(args[0]) if args else b"",
                key=_bytes(args[1]) if len(args) > 1 else b"",
                client=_bytes(item[5]) if len(item) > 5 else b"",
            )
        )
    return out


def parse_stats_conns(raw: bytes) -> list[ClientInfo]:
    """Memcached `stats conns`: `STAT <fd>:<field> <value>` lines, grouped by fd."""
    by_fd: dict[str, dict[str, str]] = {}
    for line in raw.split(b"\r\n"):
        parts = line.split(b" ", 2)
        if len(parts) != 3 or parts[0] != b"STAT" or b":" not in parts[1]:
            continue
        fd, _, name = parts[1].decode("ascii", "replace").partition(":")
        by_fd.setdefault(fd, {})[name] = parts[2].decode("utf-8", "replace")
    out = []
    for fd, info in by_fd.items():
        addr = info.get("addr", "?")
        if not addr.startswith(("tcp:", "udp:")) or info.get("state") == "conn_listening":
            continue
        address = addr.split(":", 1)[1]
        own = is_own_address(address)
        out.append(
            ClientInfo(
                id=fd,
                addr=address,
                name=b"cachetop" if own else b"",
                age_s=None,  # `stats conns` has no connection age
                idle_s=_int(info.get("secs_since_last_cmd", "0").encode()),
                cmd=info.get("state", "").removeprefix("conn_"),
                omem=0,
                own=own,
            )
        )
    return out[:MAX_CLIENTS]


async def fetch_details(
    inst: InstanceConfig,
    timeout: float,
    own_commands: Counter[str] | None = None,
    gate: OwnTrafficGate | None = None,
    side: SideCommands | None = None,
) -> Details:
    """Slowlog and clients of one instance; never raises (the error is in Details.error).

    `side`: the poll connection of a live poller (backends/redis_side.py PollConnectionSide). The two
    commands then travel on it, so an open Clients or Slowlog tab costs no connection of its own
    (the footprint: 2 per instance, 3 while a hot-key sample runs)."""
    try:
        if inst.target.kind == "memcached":
            return await asyncio.wait_for(_memcached(inst), timeout)
        if side is not None:
            return await asyncio.wait_for(_redis_on(side), timeout)
        return await asyncio.wait_for(_redis(inst, timeout, own_commands, gate), timeout)
    except Exception as exc:  # shown in the panel; the dashboard goes on
        reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        return Details(error=f"could not fetch details: {reason}")


async def _redis(
    inst: InstanceConfig, timeout: float, own_commands: Counter[str] | None, gate: OwnTrafficGate | None
) -> Details:
    from cachetop.backends.redis_client import async_client, handshake

    def count(command: str, n: int) -> None:
        if own_commands is not None:
            own_commands[command] += n

    # Every command (the handshake included) is counted as sent and answered while no poll's
    # INFO runs, so the poll takes it out of ops/s exactly.
    # A short-lived connection: its commands (handshake, SLOWLOG, CLIENT LIST) are claimed ahead
    # on the poll connection, so other cachetop processes leave them out (backends/viewers.py).
    async with gate.shared() if gate is not None else contextlib.nullcontext():
        await claim_ahead(inst.target.host, inst.target.port, sum(handshake(inst).values()) + 2)
    client = async_client(inst, timeout, CLIENT_NAME, count=count, gate=gate, claimed=True)
    for command in ("SLOWLOG GET", "CLIENT LIST"):
        client.set_response_callback(command, lambda response, **_: response)
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.execute_command("SLOWLOG", "GET", str(SLOWLOG_ENTRIES))
            pipe.execute_command("CLIENT", "LIST")
            slow, clients = await pipe.execute(raise_on_error=False)
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
    notes = []
    if isinstance(slow, Exception):
        notes.append("SLOWLOG is not allowed for this user")
        slow = []
    if isinstance(clients, Exception):
        notes.append("CLIENT LIST is not allowed for this user")
        clients = b""
    return Details(
        slowlog=tuple(parse_slowlog(slow)),
        clients=tuple(parse_client_list(_bytes(clients))),
        notes=tuple(notes),
    )


async def _redis_on(side: SideCommands) -> Details:
    notes = []
    slow: Any = []
    clients: Any = b""
    try:
        slow = await side.call("SLOWLOG", "GET", SLOWLOG_ENTRIES)
    except ResponseError:
        notes.append("SLOWLOG is not allowed for this user")
    try:
        clients = await side.call("CLIENT", "LIST")
    except ResponseError:
        notes.append("CLIENT LIST is not allowed for this user")
    return Details(
        slowlog=tuple(parse_slowlog(slow)),
        clients=tuple(parse_client_list(_bytes(clients))),
        notes=tuple(notes),
    )


async def _memcached(inst: InstanceConfig) -> Details:
    reader, writer = await asyncio.open_connection(inst.target.host, inst.target.port)
    note_own(writer.get_extra_info("sockname"))  # this very look is ours too
    try:
        writer.write(b"stats conns\r\n")
        await writer.drain()
        raw = await reader.readuntil(b"END\r\n")
        clients = tuple(parse_stats_conns(raw))  # while this connection still counts as ours
    finally:
        forget_own(writer.get_extra_info("sockname"))
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return Details(clients=clients, supports_slowlog=False)


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def _int(value: bytes | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0

"""Connections the hot-key collectors open: raw sockets for the streams, redis-py for the rest.

MONITOR and memcached `watch` are read from raw asyncio streams so that a chunk of output costs
one regex pass (see monitor_parser.py); everything request/response goes through redis-py.
Every connection cachetop opens is named `cachetop-...` so it can be left out of MONITOR counts.
Errors never carry the password: they are built from the redacted target only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any

from cachetop.backends.capabilities import SideCommands  # noqa: F401  (re-exported for the samplers)
from cachetop.backends.viewers import (
    claim_ahead,
    counted_name,
    forget_own,
    note_own,
    parse_client_list,  # noqa: F401  (re-exported: the samplers import it from here)
)
from cachetop.engine.config import InstanceConfig
from cachetop.util.aio import OwnTrafficGate

MONITOR_CLIENT_NAME = "cachetop-hotkeys-monitor"
SIDE_CLIENT_NAME = "cachetop-hotkeys"
STREAM_LIMIT = 1 << 20  # asyncio buffers at most about this much before it stops reading


class HotKeysError(Exception):
    """A failure to show the user as is (no secrets, no traceback)."""


def ssl_context(inst: InstanceConfig) -> ssl.SSLContext | None:
    if not inst.target.tls:
        return None
    ctx = ssl.create_default_context(cafile=inst.tls_ca_file)
    if inst.tls_cert_file:
        ctx.load_cert_chain(inst.tls_cert_file, inst.tls_key_file)
    if not inst.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def resp_command(*args: bytes | str | int) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


async def read_simple_reply(reader: asyncio.StreamReader) -> bytes:
    """Reads one +OK / :123 / -ERR reply line; an error reply raises HotKeysError. A line longer
    than the stream's limit (STREAM_LIMIT) is refused: no such reply comes from a cache server."""
    try:
        line = await reader.readline()
    except ValueError:  # what readline raises past the limit
        raise HotKeysError(
            f"a reply line exceeded {STREAM_LIMIT >> 20} MiB: not a cache server, or a hostile one"
        ) from None
    if not line:
        raise HotKeysError("the server closed the connection")
    if line.startswith(b"-"):
        raise HotKeysError(line[1:].strip().decode(errors="replace")[:200])
    return line[1:].rstrip(b"\r\n")


async def open_stream(
    inst: InstanceConfig, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    target = inst.target
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                target.host,
                target.port,
                ssl=ssl_context(inst),
                limit=STREAM_LIMIT,
                server_hostname=target.host if target.tls else None,
            ),
            timeout,
        )
    except (OSError, TimeoutError) as exc:
        raise HotKeysError(f"cannot connect to {target.redacted_url}: {type(exc).__name__}") from None
    note_own(writer.get_extra_info("sockname"))  # memcached's `stats conns` cannot name it
    return reader, writer


async def open_redis_stream(
    inst: InstanceConfig, timeout: float, name: str = MONITOR_CLIENT_NAME
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    """A raw, authenticated, named Redis connection; returns it with its CLIENT ID."""
    reader, writer = await open_stream(inst, timeout)
    try:
        return reader, writer, await redis_hello(inst, reader, writer, timeout, name)
    except BaseException:
        await close_stream(writer)
        raise


async def redis_hello(
    inst: InstanceConfig,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    timeout: float,
    name: str = MONITOR_CLIENT_NAME,
) -> int:
    """AUTH (when the target has a password), CLIENT SETNAME and CLIENT ID on an open stream;
    returns the CLIENT ID.

    The connection may come and go between two polls of another cachetop, so its commands (and
    MONITOR, which follows on a monitor connection) are claimed ahead on this process's poll
    connection, and its own name counts none (backends/viewers.py)."""
    target = inst.target
    hello = []
    if target.password:
        auth = (target.username, target.password) if target.username else (target.password,)
        hello.append(resp_command("AUTH", *auth))
    hello.append(resp_command("CLIENT", "SETNAME", counted_name(name, 0)))
    hello.append(resp_command("CLIENT", "ID"))
    then = 1 if name == MONITOR_CLIENT_NAME else 0  # MONITOR itself
    await claim_ahead(target.host, target.port, len(hello) + then)
    writer.write(b"".join(hello))
    replies = []
    for _ in hello:
        replies.append(await asyncio.wait_for(read_simple_reply(reader), timeout))
    return int(replies[-1])


async def close_stream(writer: asyncio.StreamWriter | None) -> None:
    """Closes at once (abort: no waiting on unsent data), so the server drops the client."""
    if writer is None:
        return
    forget_own(writer.get_extra_info("sockname"))
    transport = writer.transport
    with contextlib.suppress(Exception):
        transport.abort()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 0.5)


def redis_client(
    inst: InstanceConfig,
    timeout: float,
    name: str = SIDE_CLIENT_NAME,
    count: Callable[[str, int], None] | None = None,
    gate: OwnTrafficGate | None = None,
) -> Any:
    """A redis-py asyncio client on one connection, RESP2, bytes in and out; no retries (the
    collector retries with its own backoff). `count` hears of every command it sends, and
    `gate` keeps each out of the way of the poller's INFO."""
    from cachetop.backends.redis_client import async_client

    return async_client(inst, timeout, name, count=count, gate=gate, single_connection_client=True)


class SideConnection:
    """The sampler's own side connection, for a process without a poller (`cachetop hotkeys`).
    Each command goes in one write with a CLIENT SETNAME that counts it (redis_client.py)."""

    def __init__(
        self,
        inst: InstanceConfig,
        timeout: float,
        count: Callable[[str, int], None] | None = None,
        gate: OwnTrafficGate | None = None,
    ) -> None:
        self._client = redis_client(inst, timeout, count=count, gate=gate)
        # Raw replies, as the poll connection gives them: redis-py parses COMMAND into a dict.
        self._client.response_callbacks.pop("COMMAND", None)

    @property
    def connections(self) -> int:
        return client_connected(self._client)

    async def call(self, *args: str | int) -> Any:
        return await self._client.execute_command(*args)

    async def rest(self) -> None:
        with contextlib.suppress(Exception):
            if self._client.connection is not None:
                await self._client.connection.disconnect()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.aclose()


def client_connected(client: Any) -> int:
    """How many connections a redis-py client holds open: its single connection, and the
    pooled ones its pipelines take (SCAN + MEMORY USAGE batches)."""
    if client is None:
        return 0
    pool = client.connection_pool
    conns = {*getattr(pool, "_available_connections", ()), *getattr(pool, "_in_use_connections", ())}
    if client.connection is not None:
        conns.add(client.connection)
    return sum(1 for conn in conns if conn.is_connected)


def redis_error_text(inst: InstanceConfig, exc: BaseException) -> str:
    """An error message without the password (redis-py messages may echo arguments)."""
    text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    if inst.target.password:
        text = text.replace(inst.target.password, "***")
    return text


async def raw_call(client: Any, *args: Any) -> Any:
    """A command whose reply redis-py would mis-parse (COMMAND DOCS, HOTKEYS): no reply callback.
    Only for a client no other task uses at the same time."""
    from cachetop.backends.redis_client import command_name
    from cachetop.backends.reply_cap import cap_for, reply_cap

    gate = getattr(client, "cachetop_gate", None)
    async with gate.shared() if gate is not None else contextlib.nullcontext():
        await client.initialize()
        count = getattr(client, "cachetop_count", None)
        if count is not None:
            count(command_name(args), 1)
        conn = client.connection
        # Not in the name yet: the connection's next named command counts it (viewers.py).
        conn._cachetop_sent = getattr(conn, "_cachetop_sent", 0) + 1
        await conn.send_command(*args)
        with reply_cap(cap_for(command_name(args))):
            return await conn.read_response()

"""How cachetop opens any redis-py connection: the poller's, the hot-key sampler's, cluster
discovery's, the detail view's and the actions'. One place, so every connection is:

- named `cachetop…` (CLIENT LIST shows it, and the hot-key sampler leaves it out),
- quiet: RESP2, no CLIENT SETINFO (an error reply on Redis < 7.2) and no maintenance
  notifications handshake, so it never adds to the error counters we report,
- never retried behind our back (redis-py 8 retries connects with backoff by default),
- verified TLS with the instance's CA, client certificate and key,
- capped: no reply may grow cachetop past a size that fits its command (backends/reply_cap.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry as SyncRetry

from cachetop.backends.reply_cap import (
    DEFAULT_CAP,
    CappedAsyncParser,
    CappedParser,
    ReplyCap,
    cap_for,
    reply_cap,
)
from cachetop.backends.viewers import counted_name
from cachetop.engine.config import InstanceConfig
from cachetop.util.aio import OwnTrafficGate


def tls_kwargs(inst: InstanceConfig) -> dict[str, Any]:
    """redis-py's own TLS arguments: certificates are verified unless tls_verify = false."""
    if not inst.target.tls:
        return {}
    return {
        "ssl_ca_certs": inst.tls_ca_file,
        "ssl_certfile": inst.tls_cert_file,
        "ssl_keyfile": inst.tls_key_file,
        "ssl_cert_reqs": "required" if inst.tls_verify else "none",
        "ssl_check_hostname": inst.tls_verify,
    }


def connection_kwargs(
    inst: InstanceConfig,
    timeout: float,
    name: str,
    *,
    host: str | None = None,
    port: int | None = None,
    db: int | None = None,
    auth: bool = True,
) -> dict[str, Any]:
    """Keyword arguments for a redis-py client or connection pool (sync or asyncio)."""
    target = inst.target
    return {
        "host": host or target.host,
        "port": port or target.port,
        "db": target.db if db is None else db,
        "username": target.username if auth else None,
        "password": target.password if auth else None,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "client_name": name,
        "driver_info": None,
        "protocol": 2,
        **tls_kwargs(inst),
    }


# Commands whose subcommand commandstats names separately ("client|list", "latency|histogram").
_CONTAINERS = frozenset(
    {"client", "config", "command", "latency", "memory", "object", "slowlog", "cluster", "acl", "xinfo"}
)

Count = Callable[[str, int], None]  # (command name as commandstats spells it, how many)


def command_name(args: Sequence[Any]) -> str:
    """The name INFO commandstats uses for a command: `get`, `client|list`, `object|freq`."""

    def text(arg: Any) -> str:
        return (arg.decode("ascii", "replace") if isinstance(arg, bytes) else str(arg)).lower()

    name = text(args[0]) if args else ""
    if name in _CONTAINERS and len(args) > 1:
        return f"{name}|{text(args[1])}"
    return name


def handshake(inst: InstanceConfig, db: int | None = None) -> dict[str, int]:
    """Commands a new connection sends before any of ours: CLIENT SETNAME, AUTH, SELECT."""
    target = inst.target
    sent = {"client|setname": 1}
    if target.password or target.username:
        sent["auth"] = 1
    if (target.db if db is None else db) != 0:
        sent["select"] = 1
    return sent


def async_client(
    inst: InstanceConfig,
    timeout: float,
    name: str,
    *,
    count: Count | None = None,
    gate: OwnTrafficGate | None = None,
    claimed: bool = False,
    **kwargs: Any,
) -> Any:
    """An asyncio client; pass single_connection_client=True, decode_responses=True... as needed.

    With `count`, every command the server will count in total_commands_processed is reported
    to it when sent (handshakes, commands, pipelines), so the poller can take them out; with
    `gate` too, each is sent and answered while no poll's INFO runs (see OwnTrafficGate).
    `claimed`: a short-lived client whose commands the caller claimed ahead on the poll
    connection (backends/viewers.py); its name counts none of them.
    """
    where = {k: kwargs.pop(k) for k in ("host", "port", "db", "auth") if k in kwargs}
    cls = _CappedRedis if count is None else _counting_class(count, gate or _NO_GATE, name)
    client_name = name
    if count is not None:
        hello = handshake(inst, where.get("db"))
        # The name carries this connection's count (backends/viewers.py), from its handshake on.
        client_name = counted_name(name, 0 if claimed else sum(hello.values()))

        async def connect(conn: Any) -> None:
            for command, n in hello.items():
                count(command, n)
            conn._cachetop_sent = sum(hello.values())
            await conn.on_connect()

        kwargs["redis_connect_func"] = connect
    client = cls(
        **connection_kwargs(inst, timeout, client_name, **where),
        ssl=inst.target.tls,
        retry=AsyncRetry(NoBackoff(), 0),
        **kwargs,
    )
    client.connection_pool.connection_kwargs["parser_class"] = CappedAsyncParser
    return client


class _NoGate:
    @contextlib.asynccontextmanager
    async def shared(self) -> Any:
        yield


_NO_GATE = _NoGate()


def pipeline_cap(stack: Sequence[tuple[Sequence[Any], Any]]) -> ReplyCap:
    """A pipeline's replies are each held to the largest cap among its commands."""
    return max(
        (cap_for(command_name(args)) for args, _ in stack), key=lambda cap: cap.limit, default=DEFAULT_CAP
    )


class _CappedRedis(aioredis.Redis):  # type: ignore[misc]
    """Each command's reply is held to its command's cap (reply_cap.py)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        with reply_cap(cap_for(command_name(args))):
            return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        async def capped(raise_on_error: bool = True) -> Any:
            with reply_cap(pipeline_cap(pipe.command_stack)):
                return await execute(raise_on_error)

        pipe.execute = capped
        return pipe


class _CappedSyncRedis(redis.Redis):  # type: ignore[misc]
    def execute_command(self, *args: Any, **options: Any) -> Any:
        with reply_cap(cap_for(command_name(args))):
            return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        def capped(raise_on_error: bool = True) -> Any:
            with reply_cap(pipeline_cap(pipe.command_stack)):
                return execute(raise_on_error)

        pipe.execute = capped
        return pipe


def _counting_class(count: Count, gate: OwnTrafficGate | _NoGate, name: str) -> type:
    class CountingRedis(_CappedRedis):  # type: ignore[misc]
        cachetop_count = staticmethod(count)
        cachetop_gate = gate

        async def _send_command_parse_response(
            self, conn: Any, command: Any, *args: Any, **options: Any
        ) -> Any:
            """Each command goes in one write with a CLIENT SETNAME that counts it (and itself),
            so another cachetop reading CLIENT LIST can take both out (backends/viewers.py)."""
            if not conn.is_connected:
                await conn.connect()
            sent = getattr(conn, "_cachetop_sent", 0) + 2
            count("client|setname", 1)
            await conn.send_packed_command(
                conn.pack_commands([("CLIENT", "SETNAME", counted_name(name, sent)), args]),
                check_health=False,
            )
            conn._cachetop_sent = sent
            await conn.read_response()  # +OK
            return await self.parse_response(conn, command, **options)

        async def execute_command(self, *args: Any, **options: Any) -> Any:
            async with gate.shared():
                count(command_name(args), 1)
                return await super().execute_command(*args, **options)

        def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
            pipe = super().pipeline(transaction, shard_hint)
            execute = pipe.execute

            async def counted(raise_on_error: bool = True) -> Any:
                async with gate.shared():
                    for args, _options in pipe.command_stack:
                        count(command_name(args), 1)
                    if transaction:
                        count("multi", 1)
                        count("exec", 1)
                    return await execute(raise_on_error)

            pipe.execute = counted
            return pipe

    return CountingRedis


def sync_client(
    inst: InstanceConfig, timeout: float, name: str, *, single_connection_client: bool = False, **kwargs: Any
) -> Any:
    """A blocking client, for the actions (evict, warm) that run in a thread."""
    where = {k: kwargs.pop(k) for k in ("host", "port", "db", "auth") if k in kwargs}
    # Our own pool, because redis.Redis connects a single connection in its constructor, before
    # a parser_class set on its pool afterwards could apply (the asyncio client connects lazily).
    pool = redis.ConnectionPool(
        connection_class=redis.SSLConnection if inst.target.tls else redis.Connection,
        parser_class=CappedParser,
        retry=SyncRetry(NoBackoff(), 0),
        **connection_kwargs(inst, timeout, name, **where),
        **kwargs,
    )
    client = _CappedSyncRedis(connection_pool=pool, single_connection_client=single_connection_client)
    client.auto_close_connection_pool = True  # as Redis.from_pool: closing the client closes its pool
    return client

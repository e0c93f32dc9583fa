"""Redis and Valkey: one pipelined round trip per poll (INFO + LATENCY HISTOGRAM), parsed cheaply.

cachetop's own commands (the poll, the probes, connection handshakes) are counted here and
subtracted from total_commands_processed and from commandstats, so ops/s is the application's
traffic, not ours. Replies are kept as bytes and only the fields we use are looked at.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import Counter
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    BusyLoadingError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cachetop.backends.base import BackendError, reason_from_oserror
from cachetop.backends.own_traffic import OwnSources, OwnTraffic
from cachetop.backends.probe import AsyncProbe, ProbeRejected
from cachetop.backends.redis_client import command_name, connection_kwargs
from cachetop.backends.redis_db import count_databases, db_missing_reason, is_db_out_of_range
from cachetop.backends.redis_info import field_text, parse_info, parse_latency_histogram
from cachetop.backends.redis_sample import sample_from_info
from cachetop.backends.redis_side import PollConnectionSide
from cachetop.backends.reply_cap import CappedAsyncParser, ReplyTooLarge, cap_for, reply_cap
from cachetop.backends.viewers import ViewerTally, counted_name, parse_client_list, register_claim
from cachetop.engine.config import InstanceConfig
from cachetop.model import Sample, Status
from cachetop.util.aio import OwnTrafficGate

CLIENT_NAME = "cachetop"
PROBE_CLIENT_NAME = "cachetop-probe"
# Redis 7 takes several sections in one INFO; older servers get "all" (which costs more to parse).
INFO_SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu")
# Per-command figures (commandstats, LATENCY HISTOGRAM) are the costly half of a poll and only
# the detail view reads them: they come with one poll every DETAIL_EVERY_S seconds.
DETAIL_SECTIONS = ("commandstats",)
DETAIL_EVERY_S = 5.0
# CLIENT LIST (other cachetop processes, foreign MONITORs) comes with the detail polls, and with
# every poll while another cachetop is connected: its cost grows with the number of clients.


def _resp(*parts: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


_ERRNO_RE = re.compile(r"Error (-?\d+)")


def _reason(exc: BaseException, timeout: float) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError | TimeoutError):
        return reason_from_oserror(cause, timeout)
    if isinstance(exc, RedisTimeoutError):
        return f"timed out after {timeout:g}s"
    match = _ERRNO_RE.search(str(exc))
    if match:
        code = int(match.group(1))
        if code == 111:
            return "connection refused"
        if code in (-2, -3, -5):
            return "unknown host"
        if code == 113:
            return "host unreachable"
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "closed" in text or "reset" in text:
        return "connection reset"
    return "connection failed"


def tls_context(inst: InstanceConfig) -> ssl.SSLContext | None:
    if not inst.target.tls:
        return None
    ctx = ssl.create_default_context(cafile=inst.tls_ca_file or None)
    if inst.tls_cert_file:
        ctx.load_cert_chain(inst.tls_cert_file, inst.tls_key_file or None)
    if not inst.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class RedisBackend:
    def __init__(self, inst: InstanceConfig, timeout: float) -> None:
        self.inst = inst
        self.target = inst.target
        self.kind = "valkey" if inst.target.kind == "valkey" else "redis"
        self.timeout = timeout
        # Commands cachetop's poll connection sent, per command name, counted when sent; a reply
        # that is an error (ACL NOPERM, unknown command) moves the count to own_errors, because
        # the server counts a rejected command as an error reply, not as a processed command.
        self.own_commands: Counter[str] = Counter()
        self.own_errors = 0
        # Other parts of cachetop that talk to this server (the hot-key sampler...) report
        # their commands here, counted when sent, so INFO can be matched against them exactly.
        self._own_sources = OwnSources()
        self.add_own_source = self._own_sources.add  # the hook they report through
        # Other components' commands wait while a poll's INFO runs (sentinel.py shares one).
        self.own_gate = OwnTrafficGate()
        self._handshake = [("client|setname", 1)]
        if self.target.password or self.target.username:
            self._handshake.append(("auth", 1))
        if self.target.db:
            self._handshake.append(("select", 1))
        self._client = self._make_client()
        # One exchange at a time on the poll connection. The gate alone does not order them: a
        # poll stops waiting for side commands after max_wait, and claims run while the gate is
        # held shared, so two exchanges could overlap and the pool would open a second
        # connection (the footprint is one poll connection per instance).
        self._wire = asyncio.Lock()
        self._version: tuple[int, ...] | None = None
        self._has_histogram = False
        self._databases: tuple[int | None] | None = None  # CONFIG GET databases, once asked
        self._last_detail: float | None = None
        self.detail_every_s = DETAIL_EVERY_S  # the Monitor sets it from the window; 0: every poll
        self._probe = self._make_probe()
        # Other cachetop processes and foreign MONITORs, from CLIENT LIST (backends/viewers.py).
        self.viewers = ViewerTally()
        self._can_list = True  # False once CLIENT LIST is refused (ACL): not asked again
        self._listed_last = False  # the previous poll read CLIENT LIST
        self._foreign_omem: int | None = None
        self._withdraw_claim = register_claim(self.target.host, self.target.port, self._claim)
        self._closed = False
        # The hot-key sampler's side commands go on the poll connection (hotkeys/conn.py).
        self.side_commands = PollConnectionSide(self)

    # --- connections ------------------------------------------------------------------------

    def _make_client(self) -> aioredis.Redis:
        backend = self

        base: type[Connection] = SSLConnection if self.target.tls else Connection

        hello = sum(n for _, n in self._handshake)

        class CountingConnection(base):  # type: ignore[valid-type,misc]
            async def on_connect_check_health(self, check_health: bool = True) -> None:
                await super().on_connect_check_health(check_health=False)
                backend.own_commands.update(dict(backend._handshake))
                self._cachetop_sent = hello  # the commands its name counts (backends/viewers.py)

        pool = aioredis.ConnectionPool(
            connection_class=CountingConnection,
            parser_class=CappedAsyncParser,
            max_connections=1,  # _exchange_now uses it one exchange at a time
            retry=Retry(NoBackoff(), 0),  # _exchange retries once itself, only where it helps
            **{
                **connection_kwargs(self.inst, self.timeout, counted_name(CLIENT_NAME, hello)),
                # The Poller bounds every poll with asyncio.timeout; redis-py's own per-read
                # timeout would only add a second timer to each reply (a fifth of a poll's CPU).
                "socket_timeout": None,
            },
        )
        return aioredis.Redis(connection_pool=pool)

    def _make_probe(self) -> AsyncProbe:
        hello: list[tuple[bytes, bytes]] = []
        if self.target.password:
            args = [self.target.username] if self.target.username else []
            hello.append((_resp("AUTH", *args, self.target.password), b"+OK"))
        hello.append((_resp("CLIENT", "SETNAME", counted_name(PROBE_CLIENT_NAME, len(hello) + 1)), b"+OK"))
        return AsyncProbe(
            self.target.host,
            self.target.port,
            self.timeout,
            # The probe names itself with its own count: a round trip that touches no key, and
            # tells other cachetop processes exactly what this connection sent.
            request=lambda n: _resp("CLIENT", "SETNAME", counted_name(PROBE_CLIENT_NAME, n)),
            expect=b"+OK",
            ssl_context=tls_context(self.inst),
            hello=hello,
        )

    # --- probe ----------------------------------------------------------------------------------

    async def probe(self) -> float:
        return await self._probe.probe()

    def _own_snapshot(self) -> dict[str, int]:
        """Every command of ours sent so far, the probe's included, per command name."""
        own = self._own_sources.add_commands_to(dict(self.own_commands))
        probe = self._probe
        own["client|setname"] = own.get("client|setname", 0) + probe.sent + probe.connects
        if self.target.password:
            own["auth"] = own.get("auth", 0) + probe.connects
        return own

    def close_probe(self) -> None:
        self._probe.close()

    # --- poll ---------------------------------------------------------------------------------

    async def poll(self, now: float) -> Sample:
        try:
            detail = self._last_detail is None or now - self._last_detail >= self.detail_every_s - 0.05
            listing = self._can_list and (detail or self.viewers.connections > 0)
            raw_info, raw_hist, own = await self._round_trip(detail, listing)
        except (AuthenticationError, AuthenticationWrongNumberOfArgsError):
            raise BackendError(Status.AUTH_FAILED, "auth failed (check username and password)") from None
        except BusyLoadingError:
            raise BackendError(Status.LOADING, "loading the dataset into memory") from None
        except ResponseError as exc:
            text = str(exc)
            if text.startswith(("NOAUTH", "WRONGPASS")) or "invalid password" in text.lower():
                raise BackendError(Status.AUTH_FAILED, "auth failed (check username and password)") from None
            if text.startswith("NOPERM"):
                raise BackendError(Status.AUTH_FAILED, "the user may not run INFO (NOPERM)") from None
            if is_db_out_of_range(exc):
                raise BackendError(Status.DOWN, await self._db_missing()) from None
            raise BackendError(Status.DOWN, f"server error: {text.split(chr(10))[0][:60]}") from None
        except ReplyTooLarge as exc:
            raise BackendError(Status.DOWN, str(exc)) from None
        except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
            raise BackendError(Status.DOWN, _reason(exc, self.timeout)) from None
        except RedisError as exc:
            # A reply that is not RESP: something else listens on this port.
            kind = type(exc).__name__
            raise BackendError(Status.DOWN, f"not a Redis/Valkey server? (protocol error: {kind})") from None
        fields, commandstats = parse_info(raw_info)
        if detail:
            self._last_detail = now
        return sample_from_info(self, now, fields, commandstats, raw_hist, own)

    async def _db_missing(self) -> str:
        """Why SELECT failed, with the server's database count (asked once: it cannot change
        without a restart, and a restart with more databases makes SELECT succeed)."""
        if self._databases is None:
            self._databases = (await count_databases(self.inst, self.timeout),)
        return db_missing_reason(self.target.db, self._databases[0])

    async def run_own(self, *commands: tuple[str, ...]) -> list[Any]:
        """Sends commands on the poll connection as cachetop's own (left out of ops/s and
        command stats) and returns the raw replies, an error reply as an exception value.
        Bounded by the poll timeout. Cluster discovery and the hot-key sampler use it."""
        if self._closed:  # a sampler still running after a failover must not reconnect here
            raise RedisConnectionError("the poll connection is closed")
        async with asyncio.timeout(self.timeout):
            replies, _ = await self._exchange(*commands)
        return replies

    async def _claim(self, n: int) -> None:
        """Counts `n` commands a short-lived connection of ours is about to send in the poll
        connection's name (viewers.claim_ahead). Its caller holds the own-traffic gate shared."""
        await self._exchange_now((), extra=n)

    async def _exchange(self, *commands: tuple[str, ...]) -> tuple[list[Any], OwnTraffic]:
        """Sends commands in one write and reads every reply (errors as values), as raw bytes.

        Also returns what cachetop had sent before these commands (the snapshot INFO's counters
        include), taken after any handshake of this very call. This goes below redis-py's client
        API to its pooled connection: the pipeline object costs more CPU than parsing INFO.
        """
        # No side command of ours is in flight from the counts' snapshot to INFO's reply.
        async with self.own_gate.exclusive(max_wait=min(0.5, self.timeout / 4)):
            return await self._exchange_now(commands)

    async def _exchange_now(
        self, commands: tuple[tuple[str, ...], ...], extra: int = 0, before: int = 0
    ) -> tuple[list[Any], OwnTraffic]:
        """`before`: how many of `commands` run ahead of INFO, so INFO's counters hold them."""
        async with self._wire:
            return await self._exchange_locked(commands, extra, before)

    async def _exchange_locked(
        self, commands: tuple[tuple[str, ...], ...], extra: int, before: int
    ) -> tuple[list[Any], OwnTraffic]:
        pool = self._client.connection_pool
        for attempt in (1, 2):
            conn = await pool.get_connection()  # connects (and handshakes) when needed
            fresh = not getattr(conn, "_cachetop_used", False)
            # First in the write, a CLIENT SETNAME whose name counts every command this
            # connection has sent, this write's included (and `extra` claimed ahead).
            sent = getattr(conn, "_cachetop_sent", 0) + 1 + len(commands) + extra
            batch = (("CLIENT", "SETNAME", counted_name(CLIENT_NAME, sent)), *commands)
            names = [command_name(c) for c in batch]
            self.own_commands.update(names[: 1 + before])
            hits, misses = self._own_sources.reads()
            connections = self._own_sources.connections()
            own = OwnTraffic(self._own_snapshot(), self.own_errors, hits, misses, connections)
            self.own_commands.update(names[1 + before :])
            try:
                await conn.send_packed_command(conn.pack_commands(batch), check_health=False)
                conn._cachetop_sent = sent
                replies: list[Any] = []
                for name in names:
                    try:
                        with reply_cap(cap_for(name)):
                            replies.append(await conn.read_response(disable_decoding=True))
                    except ResponseError as exc:
                        replies.append(exc)
                        self.own_commands[name] -= 1
                        self.own_errors += 1
                conn._cachetop_used = True  # type: ignore[attr-defined]
                return replies[1:], own
            except RedisConnectionError:
                await conn.disconnect()
                # A pooled connection to a server that restarted fails once: retry on a new one.
                if fresh or attempt == 2:
                    raise
            except BaseException:
                await conn.disconnect()
                raise
            finally:
                await pool.release(conn)
        raise AssertionError("unreachable")

    async def _round_trip(self, detail: bool, listing: bool) -> tuple[bytes, Any, OwnTraffic]:
        if self._version is None:
            (raw,), own = await self._exchange(("INFO", "all"))
            self._listed_last = False
            if isinstance(raw, Exception):
                raise raw
            fields, _ = parse_info(raw)
            version = field_text(fields, b"valkey_version") or field_text(fields, b"redis_version") or "0"
            self._version = tuple(int(p) for p in re.findall(r"\d+", version)[:3])
            is_valkey = field_text(fields, b"server_name") == "valkey"
            self._has_histogram = is_valkey or self._version >= (7,)
            return raw, None, own
        if self._version < (7,):
            info: tuple[str, ...] = ("INFO", "all" if detail else "default")
        else:
            info = ("INFO", *INFO_SECTIONS, *(DETAIL_SECTIONS if detail else ()))
        # CLIENT LIST and INFO in one write: the server runs them back to back, so the clients
        # listed are the ones INFO counts, each with the commands INFO counts (viewers.py).
        head: tuple[tuple[str, ...], ...] = (("CLIENT", "LIST"),) if listing else ()
        tail: tuple[tuple[str, ...], ...] = (
            (("LATENCY", "HISTOGRAM"),) if self._has_histogram and detail else ()
        )
        async with self.own_gate.exclusive(max_wait=min(0.5, self.timeout / 4)):
            replies, own = await self._exchange_now((*head, info, *tail), before=len(head))
        if listing:
            self._take_listing(replies[0])
        else:
            self._listed_last = False
        raw = replies[len(head)]
        hist = replies[len(head) + 1] if tail else None
        if isinstance(raw, Exception):
            raise raw
        if isinstance(hist, Exception):
            self._has_histogram = False  # e.g. renamed or ACL-denied: stop asking
            hist = None
        return raw, hist, own

    def _take_listing(self, reply: Any) -> None:
        if isinstance(reply, Exception):  # ACL denies CLIENT LIST: no viewers, no MONITORs known
            self._can_list, self._listed_last = False, False
            self._foreign_omem = None
            return
        self.viewers.update(parse_client_list(reply), continuous=self._listed_last)
        self._listed_last = True
        self._foreign_omem = sum(m.omem for m in self.viewers.foreign_monitors)

    async def close(self) -> None:
        self._closed = True
        self._withdraw_claim()
        self.close_probe()
        await self._client.aclose()
        await self._client.connection_pool.disconnect()


__all__ = ["ProbeRejected", "RedisBackend", "parse_info", "parse_latency_histogram"]

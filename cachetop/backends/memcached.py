"""Memcached: `stats` per poll over one persistent connection, `stats settings` once.

The text protocol is three lines of code to speak, so this uses asyncio streams directly
rather than a blocking client in a thread. `stats`, `mn` and `version` move none of the
counters we report (cmd_*, get_hits...), so the monitor never counts itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable

from cachetop.backends.base import BackendError, reason_from_oserror
from cachetop.backends.probe import AsyncProbe
from cachetop.backends.process import local_rss
from cachetop.backends.viewers import forget_own, note_own, registry
from cachetop.engine.config import InstanceConfig
from cachetop.model import Sample, Status

# Counted as "operations" for ops/s: every command that touches an item. Not cas_*: a CAS is
# already one cmd_set (memcached counts both), so adding cas_* would count it twice.
OPS_FIELDS = (
    "cmd_get",
    "cmd_set",
    "cmd_touch",
    "cmd_flush",
    "delete_hits",
    "delete_misses",
    "incr_hits",
    "incr_misses",
    "decr_hits",
    "decr_misses",
)
# Memcached has no single error counter; these are the ones that mean a client was refused.
ERROR_FIELDS = (
    "rejected_connections",
    "listen_disabled_num",
    "store_too_large",
    "store_no_memory",
    "auth_errors",
    "read_buf_oom",
    "response_obj_oom",
)
# Items removed because their TTL passed: lazily on get, by the LRU crawler, or reused on alloc.
EXPIRED_FIELDS = ("get_expired", "crawler_reclaimed", "reclaimed")
SETTINGS_FACTS = ("maxbytes", "maxconns", "evictions", "item_size_max", "lru_crawler", "num_threads")

_NUMBER = re.compile(rb"^-?\d+(\.\d+)?$")

# How much of one reply we read (see "Limits that protect cachetop" in docs/fleets.md). A real `stats` or
# `stats settings` is 2-5 KiB; `stats conns` is about 250 bytes a connection (counted as it
# streams, never held). A peer that sends more is not memcached, or is a hostile one.
MIB = 1 << 20
STATS_MAX = 1 * MIB
CONNS_MAX = 64 * MIB
LINE_MAX = 64 * 1024  # asyncio's default stream limit: no line may be longer


def parse_stats(raw: bytes) -> dict[str, bytes]:
    """`STAT name value` lines -> {name: value}."""
    out: dict[str, bytes] = {}
    for line in raw.split(b"\r\n"):
        if line.startswith(b"STAT "):
            _, name, value = line.split(b" ", 2)
            out[name.decode("ascii", "replace")] = value
    return out


def stat_number(stats: dict[str, bytes], name: str) -> int:
    """A numeric stat as an int (0 when absent or not a number)."""
    value = stats.get(name)
    if value is None or not _NUMBER.match(value):
        return 0
    return int(float(value))


class _ServerError(BackendError):
    """The server answered ERROR / CLIENT_ERROR / SERVER_ERROR."""


def _too_large(what: str, limit: int) -> str:
    size = f"{limit // MIB} MiB" if limit >= MIB else f"{limit // 1024} KiB"
    return f"{what} exceeded {size}: not a cache server, or a hostile one"


class MemcachedBackend:
    def __init__(self, inst: InstanceConfig, timeout: float) -> None:
        self.inst = inst
        self.target = inst.target
        self.kind = "memcached"
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._settings: dict[str, str] = {}
        self._probe = AsyncProbe(self.target.host, self.target.port, timeout, request=b"mn\r\n", expect=b"MN")
        # Connections other components hold open to this server (curr_connections counts them).
        self._own_connections: dict[str, Callable[[], int]] = {}
        self._probe_checked = False
        self._extra_listeners = 0
        self._worker_dropped: int | None = None  # log_worker_dropped in the last `stats`

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.target.host, self.target.port, limit=LINE_MAX
        )
        note_own(self._writer.get_extra_info("sockname"))  # marked as ours in `stats conns`
        settings = parse_stats(await self._command(b"stats settings\r\n"))
        self._settings = {k: settings[k].decode("utf-8", "replace") for k in SETTINGS_FACTS if k in settings}
        # curr_connections counts the listening sockets but one (memcached reports curr - 1), and
        # UDP sockets: a server bound to IPv4 and IPv6 shows one more connection than it serves.
        try:
            listening = udp = 0
            async for line in self._lines(b"stats conns\r\n", CONNS_MAX, "stats conns"):
                listening += b":state conn_listening" in line
                udp += b":addr udp" in line  # udp: and udp6:
            self._extra_listeners = max(0, listening - 1) + udp
        except _ServerError:  # a memcached too old for `stats conns`
            self._extra_listeners = 0

    async def _command(self, request: bytes) -> bytes:
        return b"".join([line async for line in self._lines(request, STATS_MAX, request.decode().strip())])

    async def _lines(self, request: bytes, limit: int, what: str) -> AsyncIterator[bytes]:
        """The `STAT ...` lines of one reply, up to END; at most `limit` bytes of them."""
        assert self._reader is not None and self._writer is not None
        self._writer.write(request)
        await self._writer.drain()
        read = 0
        while True:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError:
                raise BackendError(Status.DOWN, _too_large(f"a line of {what}", LINE_MAX)) from None
            if line == b"END\r\n":
                return
            if line.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
                text = line[:80].decode("utf-8", "replace").strip()
                raise _ServerError(Status.DOWN, f"server error: {text}")
            if not line.startswith(b"STAT "):
                # Not memcached's text protocol: something else listens on this port.
                raise BackendError(Status.DOWN, "not a memcached server? (unexpected reply)")
            read += len(line)
            if read > limit:
                raise BackendError(Status.DOWN, _too_large(f"reply to {what}", limit))
            yield line

    def add_own_source(
        self, name: str, *_counts: object, connections: Callable[[], int] | None = None, **_reads: object
    ) -> None:
        """The Redis backend's hook (see backends/redis.py), for memcached: only connections
        matter here, since `watch` moves no stats counter (no commands or reads to take out)."""
        if connections is not None:
            self._own_connections[name] = connections

    async def poll(self, now: float) -> Sample:
        try:
            raw = await self._stats()
        except BackendError:
            await self._drop()
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
            await self._drop()
            if isinstance(exc, asyncio.IncompleteReadError):
                raise BackendError(Status.DOWN, "connection closed by the server") from None
            raise BackendError(Status.DOWN, reason_from_oserror(exc, self.timeout)) from None
        except asyncio.CancelledError:
            await self._drop()  # a timed-out poll leaves a half-read reply behind
            raise
        return self._sample(now, parse_stats(raw))

    async def _stats(self) -> bytes:
        if self._writer is not None:
            try:
                return await self._command(b"stats\r\n")
            except (OSError, asyncio.IncompleteReadError):
                # The server may have restarted: try once more on a fresh connection.
                await self._drop()
        await self._connect()
        return await self._command(b"stats\r\n")

    def worker_drops(self) -> int | None:
        """log_worker_dropped from the last poll's `stats`, for the `watch` sampler's drop rate
        (hotkeys/memcached_watch.py): read here, it costs no connection of its own."""
        return self._worker_dropped

    def _sample(self, now: float, stats: dict[str, bytes]) -> Sample:
        if "log_worker_dropped" in stats:
            self._worker_dropped = stat_number(stats, "log_worker_dropped")
        cpu = sum(float(stats.get(f, b"0")) for f in ("rusage_user", "rusage_system"))
        counters = {
            "hits": stat_number(stats, "get_hits"),
            "misses": stat_number(stats, "get_misses"),
            "commands": sum(stat_number(stats, f) for f in OPS_FIELDS),
            "errors": sum(stat_number(stats, f) for f in ERROR_FIELDS),
            "evictions": stat_number(stats, "evictions"),
            "expired": sum(stat_number(stats, f) for f in EXPIRED_FIELDS),
            "cpu_ms": int(cpu * 1000),
        }
        own_connections = 1 + (1 if self._probe.connected else 0)
        own_connections += sum(c() for c in self._own_connections.values())
        # Memcached cannot name a client: other cachetop processes on this host say how many
        # connections they hold here (backends/viewers.py); their polls add no operations.
        viewers = registry()
        server = f"{self.target.address}#{stat_number(stats, 'pid')}"  # a new server on the port is another
        viewers.publish(server, own_connections)
        other_connections, other_viewers = viewers.others(server)
        not_app = own_connections + other_connections + self._extra_listeners
        gauges: dict[str, float] = {
            "memory_used": stat_number(stats, "bytes"),
            "memory_max": stat_number(stats, "limit_maxbytes"),
            "memory_max_is_system": 0.0,
            "connections": max(0, stat_number(stats, "curr_connections") - not_app),
        }
        pid = stat_number(stats, "pid") or None
        peer = self._writer.get_extra_info("peername") if self._writer is not None else None
        rss = local_rss(peer[0] if peer else None, pid, ("memcached",))
        if rss is not None:
            gauges["rss"] = rss
        uptime = stat_number(stats, "uptime")
        counters["uptime_s"] = uptime  # goes down on restart, which starts a new window
        facts = {
            "version": stats.get("version", b"?").decode("utf-8", "replace"),
            "server": "memcached",
            "role": "standalone",
            "uptime_s": str(uptime),
            "maxmemory_policy": "lru" if self._settings.get("evictions", "on") == "on" else "noeviction (-M)",
            "persistence": "none",
            "curr_items": str(stat_number(stats, "curr_items")),
            **{f"setting_{k}": v for k, v in self._settings.items()},
        }
        if pid:
            facts["pid"] = str(pid)
        if other_viewers:
            plural = "s" if other_viewers > 1 else ""
            facts["other_viewers"] = (
                f"{other_viewers} other cachetop viewer{plural} on this host, {other_connections}"
                " connections (left out; they add no operations)"
            )
        return Sample(time=now, counters=counters, gauges=gauges, facts=facts, epoch=str(pid or ""))

    async def _drop(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            forget_own(writer.get_extra_info("sockname"))
            writer.close()
            with contextlib.suppress(OSError, TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 0.5)

    async def probe(self) -> float:
        if not self._probe_checked:
            # Memcached before 1.6 has no meta commands: fall back to `version`.
            try:
                elapsed = await self._probe.probe()
                self._probe_checked = True
                return elapsed
            except OSError as exc:
                if "ERROR" not in str(exc):
                    raise
                self._probe = AsyncProbe(
                    self.target.host,
                    self.target.port,
                    self.timeout,
                    request=b"version\r\n",
                    expect=b"VERSION",
                )
                self._probe_checked = True
        return await self._probe.probe()

    def close_probe(self) -> None:
        self._probe.close()

    async def close(self) -> None:
        registry().withdraw_all(self.target.address)
        self.close_probe()
        await self._drop()

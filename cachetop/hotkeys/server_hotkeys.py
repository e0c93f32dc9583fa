"""Server-side hot-key tracking, where the server has it.

* Redis 8.6+: `HOTKEYS START METRICS n [CPU] [NET] [COUNT k] [DURATION s] ...`, then `HOTKEYS GET`
  (a field/value list with `by-cpu-time-us` and `by-net-bytes` as key/value lists), `HOTKEYS RESET`.
  One session per node: if someone else's session is running we do not touch it.
* Valkey 9.2+: `HOTKEYS GET` / `HOTKEYS RESET` only, on when the `hotkey-top-k` config is > 0;
  GET returns entries with `key`, `db` and `qps` (RESP2: flat field/value lists).

Which one exists is read from `COMMAND DOCS HOTKEYS` (its subcommands): an empty reply means
neither (Redis 7.x, Valkey < 9.2). Parsing is pure so it can be tested without those servers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.conn import raw_call
from cachetop.hotkeys.sampler import NoOwnTraffic, SamplerReport
from cachetop.hotkeys.view import HotKey, show_key

REDIS_HOTKEYS = "redis"
VALKEY_HOTKEYS = "valkey"


def _b(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _pairs(value: Any) -> dict[bytes, Any]:
    """A RESP3 map, or a RESP2 flat [field, value, ...] list, as a dict with bytes keys."""
    if isinstance(value, Mapping):
        return {_b(k): v for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | str):
        items = list(value)
        return {_b(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}
    return {}


def hotkeys_flavour(command_docs_reply: Any) -> str | None:
    """From `COMMAND DOCS HOTKEYS`: "redis" (START/GET/STOP), "valkey" (GET/RESET) or None."""
    docs = _pairs(command_docs_reply)
    entry = docs.get(b"hotkeys")
    if entry is None:
        return None
    subcommands = _pairs(_pairs(entry).get(b"subcommands", {}))
    names = {name.lower() for name in subcommands}
    if b"hotkeys|start" in names:
        return REDIS_HOTKEYS
    if b"hotkeys|get" in names:
        return VALKEY_HOTKEYS
    return None


@dataclass(frozen=True, slots=True)
class ServerHotKey:
    key: bytes
    value: float  # cpu µs (Redis), qps (Valkey)
    share: float | None  # of the server's total for that metric, 0..1
    db: int | None = None


@dataclass(frozen=True, slots=True)
class ServerHotKeys:
    unit: str  # "cpu_us" | "qps"
    keys: tuple[ServerHotKey, ...]
    duration_s: float | None
    active: bool


def parse_redis_hotkeys_get(reply: Any) -> ServerHotKeys | None:
    """Redis 8.6 `HOTKEYS GET`; None when there is no session data. A cluster-style list of
    per-node replies is accepted too (only the first is used: we talk to one node)."""
    if isinstance(reply, list) and reply and isinstance(reply[0], list | dict) and not _pairs(reply):
        reply = reply[0]
    fields = _pairs(reply)
    if not fields:
        return None
    total_cpu = fields.get(b"all-commands-all-slots-us")
    pairs = _pairs(fields.get(b"by-cpu-time-us", []))
    unit = "cpu_us"
    total = total_cpu
    if not pairs:
        pairs = _pairs(fields.get(b"by-net-bytes", []))
        unit = "net_bytes"
        total = fields.get(b"net-bytes-all-commands-all-slots")
    keys = tuple(
        ServerHotKey(key, float(v), float(v) / float(total) if total else None)
        for key, v in sorted(pairs.items(), key=lambda kv: -float(kv[1]))
    )
    duration = fields.get(b"collection-duration-ms")
    return ServerHotKeys(
        unit=unit,
        keys=keys,
        duration_s=float(duration) / 1000 if duration is not None else None,
        active=int(fields.get(b"tracking-active", 0) or 0) == 1,
    )


def parse_valkey_hotkeys_get(reply: Any) -> ServerHotKeys:
    """Valkey `HOTKEYS GET`: a list of entries (maps, or flat lists in RESP2), by qps."""
    keys = []
    total = 0.0
    entries = [_pairs(e) for e in (reply or [])]
    for e in entries:
        total += float(e.get(b"qps", 0) or 0)
    for e in entries:
        qps = float(e.get(b"qps", 0) or 0)
        db = e.get(b"db")
        keys.append(
            ServerHotKey(
                _b(e.get(b"key", b"")),
                qps,
                qps / total if total else None,
                int(db) if db is not None else None,
            )
        )
    keys.sort(key=lambda k: -k.value)
    return ServerHotKeys(unit="qps", keys=tuple(keys), duration_s=None, active=bool(keys))


async def detect(client: Any) -> str | None:
    try:
        reply = await raw_call(client, "COMMAND", "DOCS", "HOTKEYS")
    except Exception:
        return None
    return hotkeys_flavour(reply)


async def valkey_enabled(client: Any) -> bool:
    with contextlib.suppress(Exception):
        reply = _pairs(await client.execute_command("CONFIG", "GET", "hotkey-top-k"))
        return int(reply.get(b"hotkey-top-k", 0) or 0) > 0
    return False


def server_report(latest: ServerHotKeys | None, unit: str, phase: str, s: HotKeySettings) -> SamplerReport:
    """The rows of the last HOTKEYS GET (none before the first); `unit` until then."""
    keys: tuple[HotKey, ...] = ()
    if latest is not None:
        unit = latest.unit
        keys = tuple(
            HotKey(
                k.key,
                show_key(k.key),
                int(k.value),
                k.value if latest.unit == "qps" else None,
                k.share,
                hot=k.share is not None and k.share * 100 >= s.min_share,
            )
            for k in latest.keys[: s.k]
        )
    return SamplerReport(phase, "server-side HOTKEYS", unit, keys=keys)


class RedisHotKeysPoller(NoOwnTraffic):
    """One Redis 8.6 tracking session per cycle, with DURATION so the server ends it even if we die.
    Its commands go through the collector's client, which counts them."""

    source = "hotkeys"

    def __init__(self, client: Any, k: int, on_s: float, off_s: float) -> None:
        self.client = client
        self.k = k
        self.on_s = max(1, round(on_s))
        self.off_s = off_s
        self.latest: ServerHotKeys | None = None
        self.own_commands = 0
        self.phase = "starting"

    async def run(self) -> None:
        while True:
            self.own_commands += 1
            await self.client.execute_command(
                "HOTKEYS", "START", "METRICS", 2, "CPU", "NET", "COUNT", self.k, "DURATION", self.on_s
            )
            self.phase = "sampling"
            try:
                await asyncio.sleep(self.on_s)
                self.own_commands += 1
                self.latest = parse_redis_hotkeys_get(await raw_call(self.client, "HOTKEYS", "GET"))
            finally:
                self.own_commands += 1
                with contextlib.suppress(Exception):
                    await self.client.execute_command("HOTKEYS", "RESET")
            self.phase = "waiting"
            await asyncio.sleep(self.off_s)

    def report(self, settings: HotKeySettings) -> SamplerReport:
        return server_report(self.latest, "cpu_us", self.phase, settings)


class ValkeyHotKeysPoller(NoOwnTraffic):
    source = "hotkeys"

    def __init__(self, client: Any, interval_s: float) -> None:
        self.client = client
        self.interval_s = interval_s
        self.latest: ServerHotKeys | None = None
        self.own_commands = 0
        self.phase = "sampling"

    async def run(self) -> None:
        while True:
            self.own_commands += 1
            self.latest = parse_valkey_hotkeys_get(await raw_call(self.client, "HOTKEYS", "GET"))
            await asyncio.sleep(self.interval_s)

    def report(self, settings: HotKeySettings) -> SamplerReport:
        return server_report(self.latest, "qps", self.phase, settings)

"""Throttled SCAN walks: LFU frequencies (OBJECT FREQ) and big keys (MEMORY USAGE).

Each tick looks at no more than `budget` keys, pipelined, then waits `tick_s`; the SCAN cursor
is kept between ticks so a large keyspace is walked a little at a time and a full pass restarts
from 0. Results are kept in bounded tables (the top `keep` by value).

Cost to the counters cachetop reports: OBJECT FREQ is a key lookup, so the server counts it in
keyspace_hits (and keyspace_misses when the key vanished between SCAN and FREQ). The scanner
counts how many it caused (`own_hits`, `own_misses`) so the hit ratio can leave them out.
MEMORY USAGE and SCAN do not touch those counters.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import Counter
from dataclasses import dataclass
from typing import Any

from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.sampler import SamplerReport
from cachetop.hotkeys.view import HotKey, show_key

LFU_POLICIES = ("allkeys-lfu", "volatile-lfu")


@dataclass(frozen=True, slots=True)
class ScannedKey:
    key: bytes
    value: int  # LFU counter (0..255, logarithmic) or bytes


class BoundedTop:
    """The `keep` largest values seen in the current and the previous full SCAN pass."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._current: dict[bytes, int] = {}
        self._previous: dict[bytes, int] = {}

    def offer(self, key: bytes, value: int) -> None:
        cur = self._current
        if key in cur or len(cur) < self.keep:
            cur[key] = value
            return
        smallest = min(cur, key=cur.__getitem__)
        if value > cur[smallest]:
            del cur[smallest]
            cur[key] = value

    def end_pass(self) -> None:
        self._previous, self._current = self._current, {}

    def top(self, n: int) -> list[ScannedKey]:
        merged = {**self._previous, **self._current}
        best = heapq.nlargest(n, merged.items(), key=lambda kv: kv[1])
        return [ScannedKey(k, v) for k, v in best]


class ThrottledScan:
    """Walks the keyspace `budget` keys per tick and asks the server one value per key."""

    def __init__(self, client: Any, *, budget: int, tick_s: float, keep: int, what: str) -> None:
        self.client = client
        self.budget = budget
        self.tick_s = tick_s
        self.what = what  # "freq" | "memory"
        self.table = BoundedTop(keep)
        self.cursor = 0
        self.passes = 0
        self.scanned = 0
        self.own_commands = 0
        self.own_hits = 0
        self.own_misses = 0

    async def step(self) -> None:
        """One tick's work: SCAN up to `budget` keys from the saved cursor, then values for them."""
        self.own_commands += 1
        cursor, keys = await self.client.scan(self.cursor, count=self.budget)
        self.cursor = int(cursor)
        keys = list(keys)[: self.budget * 2]
        if keys:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                if self.what == "freq":
                    pipe.execute_command("OBJECT", "FREQ", key)
                else:
                    pipe.execute_command("MEMORY", "USAGE", key)  # default 5 samples: cheap
            values = await pipe.execute(raise_on_error=False)
            self.own_commands += len(keys)
            for key, value in zip(keys, values, strict=True):
                if isinstance(value, int):
                    self.own_hits += self.what == "freq"
                    self.table.offer(bytes(key), value)
                elif value is None:
                    self.own_misses += self.what == "freq"
            self.scanned += len(keys)
        if self.cursor == 0:
            self.passes += 1
            self.table.end_pass()

    async def run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.tick_s)

    # --- as a hot-key source (sampler.HotKeySampler): LFU counters -----------------------------

    @property
    def source(self) -> str:
        return "lfu" if self.what == "freq" else "memory"

    open_connections = 0  # it runs on the collector's client

    @property
    def own_sent(self) -> Counter[str]:
        return Counter()  # the collector's client counts what it sends

    @property
    def own_reads(self) -> tuple[int, int]:
        return self.own_hits, self.own_misses

    def report(self, settings: HotKeySettings) -> SamplerReport:
        keys = tuple(HotKey(k.key, show_key(k.key), k.value, None, None) for k in self.table.top(settings.k))
        detail = f"LFU counters via SCAN + OBJECT FREQ, {settings.scan_budget} keys/s"
        return SamplerReport("sampling", detail, "lfu_freq", keys=keys)


async def lfu_policy(client: Any) -> str | None:
    """The maxmemory policy when it is an LFU one (read from INFO, which needs no admin rights)."""
    info = await client.info("memory")
    policy = info.get("maxmemory_policy", b"")
    policy = policy.decode() if isinstance(policy, bytes) else str(policy)
    return policy if policy in LFU_POLICIES else None


async def keysizes(client: Any) -> dict[str, str]:
    """`INFO keysizes` (Redis 8: per-db size histograms); empty where the server has no such section."""
    try:
        info = await client.info("keysizes")
    except Exception:
        return {}
    return {
        str(k): v.decode() if isinstance(v, bytes) else str(v)
        for k, v in info.items()
        if "_distrib_" in str(k)
    }

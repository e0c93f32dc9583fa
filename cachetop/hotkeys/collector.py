"""One instance's hot keys: picks the best source, runs it in the background, publishes views.

    collector = HotKeyCollector(inst, settings, window_s=10)
    await collector.start()          # returns at once; detection and sampling run in a task
    view = collector.snapshot()      # any time, cheap enough for 1 Hz
    await collector.stop()           # closes every connection (also on cancellation)

Source choice for `hotkeys = "auto"`: server-side HOTKEYS (Redis 8.6+, or Valkey 9.2+ with
hotkey-top-k > 0), else LFU counters when the eviction policy is LFU, else MONITOR on its duty
cycle; memcached always uses `watch`. A forced source that the server lacks is an error that
says what to change. After an error the collector retries with backoff (a restarted server
comes back by itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from cachetop.engine.config import InstanceConfig
from cachetop.hotkeys import server_hotkeys
from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.conn import (
    HotKeysError,
    SideCommands,
    client_connected,
    redis_client,
    redis_error_text,
)
from cachetop.hotkeys.memcached_watch import WatchSampler, WorkerDrops
from cachetop.hotkeys.monitor_parser import READ, ParseResult, unquote
from cachetop.hotkeys.redis_monitor import MonitorSampler
from cachetop.hotkeys.sampler import HotKeySampler
from cachetop.hotkeys.scan import ThrottledScan, keysizes, lfu_policy
from cachetop.hotkeys.stampede import StampedeDetector
from cachetop.hotkeys.view import (
    BigKey,
    HotKey,
    HotKeysView,
    HotLatch,
    PrefixStat,
    StampedeEvent,
    show_key,
)
from cachetop.hotkeys.view_rows import guaranteed, hot_key_row, is_hot, source_status
from cachetop.hotkeys.watch_parser import WatchResult
from cachetop.metrics.prefix import PrefixRoller
from cachetop.metrics.topk import WindowedTopK
from cachetop.util.aio import OwnTrafficGate, cancel_and_wait

MAX_BACKOFF_S = 30.0


class HotKeyCollector:
    def __init__(
        self,
        inst: InstanceConfig,
        settings: HotKeySettings | None = None,
        *,
        window_s: float = 10.0,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        monitor_options: dict[str, Any] | None = None,
        gate: OwnTrafficGate | None = None,
        side: SideCommands | None = None,
        worker_drops: WorkerDrops | None = None,
    ) -> None:
        self.inst = inst
        self.gate = gate  # the poller's: our commands wait while its INFO runs
        # From the poller too, so a sample costs one connection (the stream), not two: the poll
        # connection for MONITOR's side commands, and memcached's log_worker_dropped from `stats`.
        self.side = side
        self.worker_drops = worker_drops
        self.settings = s = settings or HotKeySettings()
        self.timeout = timeout
        self.clock = clock
        self.monitor_options = monitor_options or {}
        # Duty-cycled sources must see at least one on-phase inside the window.
        self.window_s = max(
            window_s, s.monitor_on + s.monitor_off if inst.target.kind != "memcached" else window_s
        )
        self.keys = WindowedTopK(k=s.k, capacity=s.counters, window_s=self.window_s, history_len=s.history)
        self.prefixes = WindowedTopK(k=s.k, capacity=s.counters, window_s=self.window_s, history_len=1)
        self.hot = HotLatch(s.min_share, s.min_ops)
        self.roller = PrefixRoller(s.separators)
        self.stampedes = StampedeDetector(
            window_s=s.stampede_window,
            min_writers=s.stampede_writers,
            # MONITOR prints keys quoted; memcached watch keys are printable as they are
            decode=unquote if inst.target.kind != "memcached" else None,
        )
        self.source_name = "none"
        self.unit = "ops"
        self.status = "starting"
        self.error: str | None = None
        self.sampler: HotKeySampler | None = None  # the running source
        self.big: ThrottledScan | None = None
        self._keysizes: dict[str, str] = {}
        self._clients: list[Any] = []  # redis-py clients of our own, for open_connections
        self._task: asyncio.Task[None] | None = None
        # Commands sent through the collector's own clients (counted by the clients themselves),
        # and by MONITOR samplers that ended (a retry starts a new one).
        self._client_commands: Counter[str] = Counter()
        self._own_commands_done: Counter[str] = Counter()
        self._own_hits_done = 0
        self._own_misses_done = 0

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"hotkeys {self.inst.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait([task])

    async def pause(self) -> None:
        """Stops sampling and closes every connection, keeping the windows and the own-traffic counts,
        while a costly collector (a keyspace analysis) holds the instance's extra connection; start()
        resumes."""
        await self.stop()
        if self.sampler is not None:
            self._retire_sampler()

    async def _run(self) -> None:
        if self.inst.hotkeys == "off":
            self.source_name, self.status = "off", "off"
            return
        backoff = 1.0
        while True:
            try:
                await self._run_source()
            except asyncio.CancelledError:
                raise
            except HotKeysError as exc:
                self.status, self.error = "error", str(exc)
            except Exception as exc:  # a server or network failure: shown, then retried
                self.status, self.error = "error", redis_error_text(self.inst, exc)
            self._retire_sampler()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _retire_sampler(self) -> None:
        self._own_commands_done.update(self._sampler_commands())
        self._own_hits_done, self._own_misses_done = self.own_keyspace_hits, self.own_keyspace_misses
        self.sampler, self.big = None, None

    async def _run_source(self) -> None:
        if self.inst.target.kind == "memcached":
            if self.inst.hotkeys not in ("auto", "watch"):
                raise HotKeysError(
                    f"hotkeys = {self.inst.hotkeys!r} is not available for memcached (use watch)"
                )
            s = self.settings
            sampler = WatchSampler(
                self.inst,
                self._ingest_watch,
                on_s=s.watch_on,
                off_s=s.watch_off,
                timeout=self.timeout,
                clock=self.clock,
                worker_drops=self.worker_drops,
            )
            runner = self._use(sampler, "ops")
            self.error = None
            await runner
            return
        # One client to detect the source (and run HOTKEYS or LFU); a second only for big keys.
        wanted = 2 if self.settings.big_keys else 1
        clients = [
            redis_client(self.inst, self.timeout, count=self._count, gate=self.gate) for _ in range(wanted)
        ]
        self._clients = clients
        try:
            runner = await self._choose_redis_source(clients[0])
            self.error = None
            if self.source_name == "monitor":
                # MONITOR brings its own connections: the detecting one would idle for ever.
                await clients[0].aclose()
            jobs = [runner]
            if self.settings.big_keys:
                self.big = ThrottledScan(
                    clients[1],
                    budget=max(1, self.settings.scan_budget // 5),
                    tick_s=1.0,
                    keep=self.settings.k,
                    what="memory",
                )
                self._keysizes = await keysizes(clients[1])
                jobs.append(self.big.run())
            await asyncio.gather(*jobs)
        finally:
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.aclose()
            self._clients = []

    async def _choose_redis_source(self, client: Any) -> Coroutine[Any, Any, None]:
        mode = self.inst.hotkeys
        s = self.settings
        if mode in ("auto", "hotkeys"):
            flavour = await server_hotkeys.detect(client)
            if flavour == server_hotkeys.REDIS_HOTKEYS:
                return self._use(
                    server_hotkeys.RedisHotKeysPoller(client, s.k, s.monitor_on, s.monitor_off), "cpu_us"
                )
            if flavour == server_hotkeys.VALKEY_HOTKEYS:
                if await server_hotkeys.valkey_enabled(client):
                    return self._use(server_hotkeys.ValkeyHotKeysPoller(client, 1.0), "qps")
                if mode == "hotkeys":
                    raise HotKeysError(
                        "HOTKEYS is off on this Valkey (enable it: CONFIG SET hotkey-top-k 20)"
                    )
            elif mode == "hotkeys":
                raise HotKeysError("this server has no HOTKEYS command (Redis 8.6+ or Valkey 9.2+ have it)")
        if mode in ("auto", "lfu"):
            policy = await lfu_policy(client)
            if policy:
                scan = ThrottledScan(client, budget=s.scan_budget, tick_s=1.0, keep=s.k, what="freq")
                return self._use(scan, "lfu_freq")
            if mode == "lfu":
                raise HotKeysError("OBJECT FREQ needs an LFU maxmemory-policy (allkeys-lfu or volatile-lfu)")
        if mode == "watch":
            raise HotKeysError('hotkeys = "watch" is for memcached; use "monitor" for Redis')
        options = {
            "on_s": s.monitor_on,
            "off_s": s.monitor_off,
            "omem_limit": s.omem_limit,
            "max_lines": s.monitor_max_lines,
            "stall": s.monitor_stall,
            **self.monitor_options,
        }
        sampler = MonitorSampler(
            self.inst,
            self._ingest_monitor,
            timeout=self.timeout,
            clock=self.clock,
            gate=self.gate,
            side=self.side,
            **options,
        )
        return self._use(sampler, "ops")

    def _use(self, sampler: HotKeySampler, unit: str) -> Coroutine[Any, Any, None]:
        self.sampler = sampler
        self.source_name = sampler.source
        self.unit = unit
        return sampler.run()

    # --- sinks (called by the samplers, on the event loop) -----------------------------------

    def _ingest_monitor(self, out: ParseResult, covered_s: float, now: float) -> None:
        self._ingest_counts(out.counts, covered_s, now)
        if out.reads:
            self.stampedes.read_many(out.reads, now)
        if out.writes:
            self.stampedes.write_many(out.writes, now)

    def _ingest_watch(self, out: WatchResult, covered_s: float, now: float) -> None:
        self._ingest_counts(out.counts, covered_s, now)
        det = self.stampedes
        for key, client, kind, miss in out.accesses:
            if kind == READ:
                if miss:
                    det.read(key, client, now)
            else:
                det.write(key, client, now)

    def _ingest_counts(self, counts: dict[bytes, list[int]], covered_s: float, now: float) -> None:
        self.keys.add_batch(now, counts)
        self.keys.cover(now, covered_s)
        rolled: dict[bytes, list[int]] = {}
        rollup = self.roller.rollup
        for key, c in counts.items():
            pattern = rollup(key)
            acc = rolled.get(pattern)
            if acc is None:
                rolled[pattern] = c.copy()
            else:
                for i in range(5):
                    acc[i] += c[i]
        self.prefixes.add_batch(now, rolled)
        self.prefixes.cover(now, covered_s)
        self.status = "sampling"

    # --- counters the poller may subtract ------------------------------------------------------

    @property
    def open_connections(self) -> int:
        """Connections this collector holds to the server right now: its INFO counts them."""
        # HOTKEYS and LFU sources run on self._clients; MONITOR and watch hold their own.
        mine = self.sampler.open_connections if self.sampler is not None else 0
        return sum(map(client_connected, self._clients)) + mine

    def _count(self, command: str, n: int = 1) -> None:
        self._client_commands[command] += n

    def _sampler_commands(self) -> Counter[str]:
        """What the source sent on connections of its own (MONITOR's); the rest went through our clients."""
        return self.sampler.own_sent if self.sampler is not None else Counter()

    @property
    def own_command_counts(self) -> Counter[str]:
        """Commands cachetop's hot-key work sent to the server so far, per command name,
        counted when sent (they are in total_commands_processed and commandstats)."""
        return self._client_commands + self._own_commands_done + self._sampler_commands()

    @property
    def own_commands(self) -> int:
        return sum(self.own_command_counts.values())

    @property
    def own_keyspace_hits(self) -> int:
        """keyspace_hits caused by OBJECT FREQ (LFU source), cumulative across retries."""
        live = self.sampler.own_reads[0] if self.sampler is not None else 0
        return self._own_hits_done + live

    @property
    def own_keyspace_misses(self) -> int:
        live = self.sampler.own_reads[1] if self.sampler is not None else 0
        return self._own_misses_done + live

    # --- the view ------------------------------------------------------------------------------

    def snapshot(self, now: float | None = None) -> HotKeysView:
        now = self.clock() if now is None else now
        wall_offset = time.time() - self.clock()
        s = self.settings
        keys: tuple[HotKey, ...] = ()
        prefixes: tuple[PrefixStat, ...] = ()
        total, sampled = 0, 0.0
        sampler = self.sampler
        if self.source_name in ("monitor", "watch"):
            res = self.keys.top(now)
            hot = self.hot.update(now, (guaranteed(kc) for kc in res.keys))
            keys = tuple(hot_key_row(kc, kc.key in hot, self.source_name == "watch") for kc in res.keys)
            total, sampled = res.total, res.covered_s
            prefixes = tuple(
                PrefixStat(p.key, show_key(p.key), p.count, p.ops_per_sec, p.share, is_hot(p, s))
                for p in self.prefixes.top(now).keys
            )
        report = sampler.report(s) if sampler is not None else None
        if report is not None:
            self.unit = report.unit
            if report.keys is not None:  # a source that keeps its own table (LFU, HOTKEYS)
                keys = report.keys
        status, detail = source_status(self.status, self.error, report)
        since = now - self.window_s
        stampedes = tuple(
            StampedeEvent(e.key, show_key(e.key), e.time + wall_offset, e.writers, e.readers)
            for e in self.stampedes.events
        )
        big = (
            tuple(BigKey(b.key, show_key(b.key), b.value) for b in self.big.table.top(s.k))
            if self.big
            else ()
        )
        return HotKeysView(
            name=self.inst.name,
            source=self.source_name,
            unit=self.unit,
            status=status,
            detail=detail,
            error=self.error,
            keys=keys,
            prefixes=prefixes,
            big_keys=big,
            stampedes=stampedes,
            stampede_events=self.stampedes.count_since(since),
            drop_rate=report.drop_rate if report is not None else None,
            total_events=total,
            sampled_s=sampled,
            window_s=self.window_s,
            max_omem=report.max_omem if report is not None else None,
            keysizes=dict(self._keysizes),
            min_share=s.min_share,
            min_ops=s.min_ops if self.source_name in ("monitor", "watch") else None,
        )

"""Memcached `watch fetchers mutations`: every get and store, with hit or miss, as a log stream.

The server never slows down for a watcher, and drops lines in two places: when we fall behind
(it tells us with `skipped=N` in the stream) and when a worker thread's log buffer is full
(the stream says nothing; `stats` counts them in log_worker_dropped, read every STATS_EVERY_S
from the poller's `stats` in a process that polls the instance, else on a side connection).
Both go into the drop rate. The stream may run continuously (off_s = 0, the default) or on a
duty cycle like MONITOR. The connections are closed in `finally`.

A watcher that stops reading costs the server little: memcached 1.6 keeps at most 256 KiB per
watcher (LOGGER_WATCHER_BUF_SIZE) and skips lines beyond it, so no guardian process is needed as
for MONITOR. Still, a stop signal (SIGTSTP...) ends the watch connection before the process stops
(suspend.py), since the server keeps formatting lines for a watcher nobody reads; the stream
starts again when the process continues.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from cachetop.engine.config import InstanceConfig
from cachetop.hotkeys import suspend
from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.conn import HotKeysError, close_stream, open_stream
from cachetop.hotkeys.linecap import LineCap
from cachetop.hotkeys.sampler import SamplerReport
from cachetop.hotkeys.status_line import watch_status
from cachetop.hotkeys.watch_parser import WatchParser, WatchResult

CHUNK = 1 << 18
_WORKER_DROPPED = re.compile(rb"STAT log_worker_dropped (\d+)")
STATS_EVERY_S = 1.0
# A watch line is under 400 bytes (keys are at most 250); a longer one is cut, so a peer that never
# sends a newline cannot grow the reader.
MAX_LINE = 4096


async def start_watch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    """Turns the connection into a `watch fetchers mutations` stream (memcached answers OK)."""
    writer.write(b"watch fetchers mutations\r\n")
    ok = await asyncio.wait_for(reader.readline(), timeout)
    if ok.strip() != b"OK":
        raise HotKeysError(f"watch refused: {ok[:200].decode(errors='replace').strip()}")


@dataclass(slots=True)
class WatchStats:
    phases: int = 0
    lines: int = 0
    skipped: int = 0  # dropped on the way to us: `skipped=N` lines
    worker_dropped: int = 0  # dropped by worker threads (log_worker_dropped; server-wide)
    long_lines: int = 0  # lines longer than MAX_LINE: cut (not a watch line), not counted
    stops_for_suspend: int = 0  # streams ended because the process was being suspended
    connected: bool = False

    @property
    def dropped(self) -> int:
        return self.skipped + self.worker_dropped

    @property
    def drop_rate(self) -> float | None:
        seen = self.lines + self.dropped
        return self.dropped / seen if seen else None


Sink = Callable[[WatchResult, float, float], None]  # (result, observed seconds, now)
# log_worker_dropped from the poller's latest `stats` (None before the first): no connection of ours.
WorkerDrops = Callable[[], int | None]


class WatchSampler:
    source = "watch"

    def __init__(
        self,
        inst: InstanceConfig,
        sink: Sink,
        *,
        on_s: float = 10.0,
        off_s: float = 0.0,
        timeout: float = 2.0,
        tick_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        worker_drops: WorkerDrops | None = None,
    ) -> None:
        self.inst = inst
        self.worker_drops = worker_drops
        self.sink = sink
        self.on_s = on_s
        self.off_s = off_s
        self.timeout = timeout
        self.tick_s = tick_s
        self.clock = clock
        self.stats = WatchStats()
        self.phase = "starting"
        self._side: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._worker_dropped: int | None = None  # the last log_worker_dropped read
        self._writer: asyncio.StreamWriter | None = None  # the watch connection, while open
        self._suspended = False

    @property
    def open_connections(self) -> int:
        return (1 if self.stats.connected else 0) + (1 if self._side is not None else 0)

    @property
    def own_sent(self) -> Counter[str]:
        return Counter()  # `watch` and `stats` move no counter that ops/s is made of

    own_reads = (0, 0)

    def report(self, settings: HotKeySettings) -> SamplerReport:
        status, detail = watch_status(self)
        return SamplerReport(status, detail, "ops", drop_rate=self.stats.drop_rate)

    async def run(self) -> None:
        try:
            while True:
                await self._sample_once()
                if self.off_s > 0:
                    self.phase = "waiting"
                    await asyncio.sleep(self.off_s)
        finally:
            if self._side is not None:
                await close_stream(self._side[1])
                self._side = None

    async def _count_worker_drops(self) -> None:
        """Adds what worker threads dropped since the last read. `stats` moves no counter that
        cachetop reports. A failure only means the drop rate misses these: it is not fatal."""
        if self.worker_drops is not None:
            self._add_worker_drops(self.worker_drops())
            return
        try:
            if self._side is None:
                self._side = await open_stream(self.inst, self.timeout)
            reader, writer = self._side
            writer.write(b"stats\r\n")
            reply = await asyncio.wait_for(reader.readuntil(b"END\r\n"), self.timeout)
        except (OSError, TimeoutError, HotKeysError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            if self._side is not None:
                await close_stream(self._side[1])
                self._side = None
            return
        m = _WORKER_DROPPED.search(reply)
        self._add_worker_drops(int(m.group(1)) if m is not None else None)

    def _add_worker_drops(self, total: int | None) -> None:
        if total is None:
            return
        if self._worker_dropped is not None and total >= self._worker_dropped:
            self.stats.worker_dropped += total - self._worker_dropped
        self._worker_dropped = total

    def end_for_suspend(self, signum: int) -> None:
        """Called from the stop-signal handler (suspend.py): ends the watch connection now."""
        writer = self._writer
        if writer is None:
            return
        self._suspended = True
        suspend.shut_down_now(writer)

    async def _baseline_from_poller(self) -> None:
        """Waits (at most the timeout) for the poller's first `stats`: it is the baseline of the
        drop count, and drops while there is none yet would be left out of the drop rate."""
        if self.worker_drops is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while self.worker_drops() is None and loop.time() < deadline:
            await asyncio.sleep(0.05)

    async def _sample_once(self) -> None:
        await self._baseline_from_poller()
        reader, writer = await open_stream(self.inst, self.timeout)
        self.stats.connected = True
        self._writer, self._suspended = writer, False
        suspend.protect(self)
        try:
            await start_watch(reader, writer, self.timeout)
            self.phase = "sampling"
            self.stats.phases += 1
            await self._count_worker_drops()  # the baseline
            await self._read(reader)
        except Exception:
            if not self._suspended:
                raise
        finally:
            suspend.release(self)
            self._writer = None
            await close_stream(writer)
            self.stats.connected = False
        if self._suspended:
            # Continued after a suspension: the next stream starts now (run's loop).
            self.stats.stops_for_suspend += 1

    async def _read(self, reader: asyncio.StreamReader) -> None:
        parser = WatchParser()
        started = last = self.clock()
        next_stats = started + STATS_EVERY_S
        pending = b""
        cap = LineCap(MAX_LINE)
        # With off_s = 0 the phase never ends: the loop only returns by cancellation.
        while self.off_s <= 0 or self.clock() - started < self.on_s:
            try:
                async with asyncio.timeout(self.tick_s):  # not wait_for: see redis_monitor._read
                    data = await reader.read(CHUNK)
            except TimeoutError:
                data = b""
            now = self.clock()
            out = WatchResult()
            if data:
                data = cap.skip(data)
                pending = parser.feed(pending + data if pending else data, out)
                head = cap.cut_if_long(pending)
                if head is not None:
                    parser.feed(head, out)
                    pending = b""
                    self.stats.long_lines += 1
            elif reader.at_eof():
                if self._suspended:
                    return
                raise HotKeysError("the server closed the watch connection")
            else:
                parser.flush(out)  # quiet for a tick: pending lookups were plain reads
            self.stats.lines += out.lines
            self.stats.skipped += out.skipped
            self.sink(out, now - last, now)
            last = now
            if now >= next_stats:
                next_stats = now + STATS_EVERY_S
                await self._count_worker_drops()

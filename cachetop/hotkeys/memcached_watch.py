"""Memcached `watch fetchers mutations`: every get and store, with hit or miss, as a log stream.

The server never slows down for a watcher: when we fall behind it drops lines and tells us with
`skipped=N`, which we count into a drop rate. The stream may run continuously (off_s = 0, the
default) or on a duty cycle like MONITOR. The connection is closed in `finally`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetop.config import InstanceConfig
from cachetop.hotkeys.conn import HotKeysError, close_stream, open_stream
from cachetop.hotkeys.watch_parser import WatchParser, WatchResult

CHUNK = 1 << 18


@dataclass(slots=True)
class WatchStats:
    phases: int = 0
    lines: int = 0
    skipped: int = 0
    connected: bool = False

    @property
    def drop_rate(self) -> float | None:
        seen = self.lines + self.skipped
        return self.skipped / seen if seen else None


Sink = Callable[[WatchResult, float, float], None]  # (result, observed seconds, now)


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
    ) -> None:
        self.inst = inst
        self.sink = sink
        self.on_s = on_s
        self.off_s = off_s
        self.timeout = timeout
        self.tick_s = tick_s
        self.clock = clock
        self.stats = WatchStats()
        self.phase = "starting"

    @property
    def open_connections(self) -> int:
        return 1 if self.stats.connected else 0

    async def run(self) -> None:
        while True:
            await self._sample_once()
            if self.off_s > 0:
                self.phase = "waiting"
                await asyncio.sleep(self.off_s)

    async def _sample_once(self) -> None:
        reader, writer = await open_stream(self.inst, self.timeout)
        self.stats.connected = True
        try:
            writer.write(b"watch fetchers mutations\r\n")
            ok = await asyncio.wait_for(reader.readline(), self.timeout)
            if ok.strip() != b"OK":
                raise HotKeysError(f"watch refused: {ok[:200].decode(errors='replace').strip()}")
            self.phase = "sampling"
            self.stats.phases += 1
            await self._read(reader)
        finally:
            await close_stream(writer)
            self.stats.connected = False

    async def _read(self, reader: asyncio.StreamReader) -> None:
        parser = WatchParser()
        started = last = self.clock()
        pending = b""
        # With off_s = 0 the phase never ends: the loop only returns by cancellation.
        while self.off_s <= 0 or self.clock() - started < self.on_s:
            try:
                data = await asyncio.wait_for(reader.read(CHUNK), self.tick_s)
            except TimeoutError:
                data = b""
            now = self.clock()
            out = WatchResult()
            if data:
                pending = parser.feed(pending + data if pending else data, out)
            elif reader.at_eof():
                raise HotKeysError("the server closed the watch connection")
            else:
                parser.flush(out)  # quiet for a tick: pending lookups were plain reads
            self.stats.lines += out.lines
            self.stats.skipped += out.skipped
            self.sink(out, now - last, now)
            last = now

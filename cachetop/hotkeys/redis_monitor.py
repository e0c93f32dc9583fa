"""Redis MONITOR, sampled on a bounded duty cycle (default 1 s on, 9 s off).

MONITOR costs the server throughput while it runs, and a monitor client that reads too slowly
makes the server buffer its output without limit (normal clients have no output buffer limit by
default; a forgotten MONITOR has OOM-killed servers). So:

* it runs at most `on_s` out of every `on_s + off_s` seconds, and a phase ends early once it
  has read `max_lines` lines: while MONITOR is on, every command costs the server the formatting
  of its line (a saturated Redis 7.0 loses about 60% of its throughput, even to a client that
  never reads), so a busy server must pay for a sample, not for a second;
* a watchdog on a second connection reads the monitor client's `omem` in CLIENT LIST every
  `check_s` and closes the monitor connection when omem reaches half the limit, so that what the
  server appends before it notices the close cannot carry omem past the limit;
* if that watchdog cannot get an answer within the timeout (the server is stuck), the monitor
  connection is closed too: we can no longer see what it costs;
* the connection is closed in `finally`, so a normal stop, Ctrl-C (task cancellation) and a crash
  all close it; if cachetop is SIGKILLed the kernel closes the socket and Redis frees the client.

Lines from cachetop's own connections (named `cachetop*`) are left out of the counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cachetop.aio import OwnTrafficGate, cancel_and_wait
from cachetop.config import InstanceConfig
from cachetop.hotkeys.conn import (
    HotKeysError,
    client_connected,
    close_stream,
    open_stream,
    parse_client_list,
    redis_client,
    redis_error_text,
    redis_hello,
    resp_command,
)
from cachetop.hotkeys.monitor_parser import MonitorParser, ParseResult, command_table_from_redis

CHUNK = 1 << 18
# With a line cap, received chunks are parsed in batches this old or this big (see _read).
HOLD_S = 0.25
HOLD_BYTES = 4 << 20


@dataclass(slots=True)
class MonitorStats:
    phases: int = 0
    lines: int = 0
    own_lines: int = 0
    max_omem: int = 0  # the largest omem the watchdog saw for our monitor client
    stops_for_omem: int = 0
    stops_for_timeout: int = 0
    stops_for_lines: int = 0  # phases that ended early with max_lines read
    own_commands: int = 0  # commands cachetop sent (they count in total_commands_processed)
    own_by_command: Counter[str] = field(default_factory=Counter)  # the same, per command name
    connected: bool = False  # a MONITOR connection is open right now
    on_seconds: float = 0.0  # how long MONITOR has been on, all phases: what the server paid for
    last_stop: str = ""


Sink = Callable[[ParseResult, float, float], None]  # (result, observed seconds, now)


class MonitorSampler:
    source = "monitor"

    def __init__(
        self,
        inst: InstanceConfig,
        sink: Sink,
        *,
        on_s: float = 1.0,
        off_s: float = 9.0,
        omem_limit: int = 8 << 20,
        max_lines: int = 0,
        timeout: float = 2.0,
        check_s: float = 0.02,
        chunk: int = CHUNK,
        consumer_delay: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        gate: OwnTrafficGate | None = None,
    ) -> None:
        self.inst = inst
        self.gate = gate
        self.sink = sink
        self.on_s = on_s
        self.off_s = off_s
        self.omem_limit = omem_limit
        self.max_lines = max_lines  # a phase ends after this many lines; 0: only on_s ends it
        self.stop_at = omem_limit // 2
        self.timeout = timeout
        self.check_s = check_s
        self.chunk = chunk
        self.consumer_delay = consumer_delay  # tests throttle the reader on purpose with this
        self.clock = clock
        self.stats = MonitorStats()
        self.phase = "starting"  # sampling | waiting | starting
        self._parser = MonitorParser()
        self._held: list[tuple[bytes, float]] = []  # chunks received, not parsed yet, and when
        self._pending = b""  # a partial last line
        self._side: Any = None  # the redis-py client for CLIENT LIST
        self._last = 0.0  # when the last parsed chunk arrived

    async def run(self) -> None:
        side = self._side = redis_client(self.inst, self.timeout, count=self._count, gate=self.gate)
        try:
            await self._load_command_table(side)
            while True:
                started = self.clock()
                await self._sample_once(side)
                self.phase = "waiting"
                # One phase per on_s + off_s, however early it ended: the duty cycle is a ceiling.
                # Continuous sampling (off_s = 0) still backs off after the watchdog stopped it.
                if self.off_s > 0:
                    rest = started + self.on_s + self.off_s - self.clock()
                else:
                    rest = 1.0 if self.stats.last_stop else 0.0
                await asyncio.sleep(max(rest, 0.0))
        finally:
            with contextlib.suppress(Exception):
                await side.aclose()

    async def _load_command_table(self, side: object) -> None:
        try:
            reply = await side.command()  # type: ignore[attr-defined]
            table = command_table_from_redis(reply)
            if table:
                self._parser.commands = table
        except Exception:  # ACL may deny COMMAND: the built-in table covers the common commands
            pass

    @property
    def open_connections(self) -> int:
        """The side connection (CLIENT LIST) and, during a phase, the MONITOR connection."""
        return client_connected(self._side) + (1 if self.stats.connected else 0)

    def _count(self, command: str, n: int = 1) -> None:
        self.stats.own_commands += n
        self.stats.own_by_command[command] += n

    async def _own_clients(self, side: object) -> set[bytes]:
        raw = await side.execute_command("CLIENT", "LIST", "TYPE", "normal")  # type: ignore[attr-defined]
        raw_b = raw if isinstance(raw, bytes) else str(raw).encode()
        return {
            c.get(b"addr", b"")
            for c in parse_client_list(raw_b)
            if c.get(b"name", b"").startswith(b"cachetop")
        }

    async def _omem(self, side: object, client_id: int) -> int | None:
        raw = await side.execute_command("CLIENT", "LIST", "ID", client_id)  # type: ignore[attr-defined]
        raw_b = raw if isinstance(raw, bytes) else str(raw).encode()
        for fields in parse_client_list(raw_b):
            if fields.get(b"id") == str(client_id).encode():
                return int(fields.get(b"omem", b"0"))
        return None  # gone: the server closed it

    async def _sample_once(self, side: object) -> None:
        self.stats.last_stop = ""
        try:
            self._parser.own_clients = await asyncio.wait_for(self._own_clients(side), self.timeout)
        except Exception as exc:
            raise HotKeysError(f"CLIENT LIST failed: {redis_error_text(self.inst, exc)}") from None
        reader, writer, client_id, on_at = await self._open_monitor()
        stop = asyncio.Event()
        watchdog = asyncio.create_task(self._watch(side, client_id, writer, stop))
        try:
            self.phase = "sampling"
            self.stats.phases += 1
            await self._read(reader, stop)
            off_at = self.clock()
            await close_stream(writer)  # MONITOR off first: the server stops paying for it
            self.stats.connected = False
            self.stats.on_seconds += off_at - on_at
            self._parse_held()
        finally:
            if self.stats.connected:
                await close_stream(writer)
                self.stats.connected = False
                self.stats.on_seconds += self.clock() - on_at
            await cancel_and_wait([watchdog])

    async def _open_monitor(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, float]:
        """Connects, names the connection and turns MONITOR on; returns when it is on."""
        # Counted before they are sent, like every command of ours (see backends/redis.py), and
        # answered before the poller's next INFO runs (the gate).
        # The connect (TCP, TLS) sends no command: outside the gate, so a slow one holds up no poll.
        reader, writer = await open_stream(self.inst, self.timeout)
        self.stats.connected = True
        try:
            async with self.gate.shared() if self.gate is not None else contextlib.nullcontext():
                if self.inst.target.password:
                    self._count("auth")
                for command in ("client|setname", "client|id", "monitor"):
                    self._count(command)
                client_id = await redis_hello(self.inst, reader, writer, self.timeout)
                on_at = self.clock()
                writer.write(resp_command("MONITOR"))
                ok = await asyncio.wait_for(reader.readline(), self.timeout)
            if not ok.startswith(b"+OK"):
                raise HotKeysError(f"MONITOR refused: {ok[:200].decode(errors='replace').strip()}")
        except BaseException:
            await close_stream(writer)
            self.stats.connected = False
            raise
        return reader, writer, client_id, on_at

    async def _read(self, reader: asyncio.StreamReader, stop: asyncio.Event) -> None:
        """Reads until on_s has passed, max_lines lines have arrived, or the watchdog says stop.

        With a line cap, chunks are held and parsed every HOLD_S (or HOLD_BYTES), and the last
        ones only after MONITOR is off: the server pays for MONITOR until we have *received*
        max_lines, not until we have counted them."""
        self._last = self.clock()
        self._pending = b""
        self._held = []
        held_bytes = 0
        deadline = self._last + self.on_s
        lines = 0
        while not stop.is_set():
            left = deadline - self.clock()
            if left <= 0:
                break
            try:
                # held chunks wait at most HOLD_S for the next one, also when none comes
                wait = min(left, HOLD_S) if self.max_lines else left
                data = await asyncio.wait_for(reader.read(self.chunk), wait)
            except TimeoutError:
                data = b""
            if stop.is_set():
                break
            if not data and reader.at_eof():
                self._parse_held()  # what arrived before the close is still a sample
                raise HotKeysError("the server closed the MONITOR connection")
            self._held.append((data, self.clock()))
            held_bytes += len(data)
            lines += data.count(b"\n")
            if self.max_lines and lines >= self.max_lines:
                # Enough for the shares: a busy server stops paying for MONITOR early.
                self.stats.stops_for_lines += 1
                break
            if (
                not self.max_lines
                or held_bytes >= HOLD_BYTES
                or self._held[-1][1] - self._held[0][1] >= HOLD_S
            ):
                self._parse_held()
                held_bytes = 0
            if self.consumer_delay:
                await asyncio.sleep(self.consumer_delay)

    def _parse_held(self) -> None:
        """Parses the chunks held so far, each with the time it arrived: rates are per second
        listened, and the stampede detector sees arrival times."""
        for data, at in self._held:
            out = ParseResult()
            if data:
                self._pending = self._parser.feed(self._pending + data if self._pending else data, out)
            self.stats.lines += out.lines
            self.stats.own_lines += out.own
            self.sink(out, at - self._last, at)
            self._last = at
        self._held = []

    async def _watch(
        self, side: object, client_id: int, writer: asyncio.StreamWriter, stop: asyncio.Event
    ) -> None:
        """Closes the monitor connection before its output buffer can pass the limit."""
        while True:
            try:
                omem = await asyncio.wait_for(self._omem(side, client_id), self.timeout)
            except Exception:
                self.stats.stops_for_timeout += 1
                self.stats.last_stop = "no answer from CLIENT LIST: sampling stopped"
                break
            if omem is None:
                self.stats.last_stop = "the server closed the MONITOR connection"
                break
            self.stats.max_omem = max(self.stats.max_omem, omem)
            if omem >= self.stop_at:
                self.stats.stops_for_omem += 1
                self.stats.last_stop = f"output buffer reached {omem} bytes: sampling paused"
                break
            await asyncio.sleep(self.check_s)
        stop.set()
        await close_stream(writer)

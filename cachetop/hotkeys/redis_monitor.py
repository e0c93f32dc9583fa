"""Redis MONITOR, sampled on a bounded duty cycle (default 1 s on, 9 s off).

MONITOR costs the server throughput while it runs, and a monitor client that reads too slowly
makes the server buffer its output without limit (normal clients have no output buffer limit by
default; a forgotten MONITOR has OOM-killed servers). So:

* it runs only `on_s` out of every `on_s + off_s` seconds;
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

from cachetop.aio import cancel_and_wait
from cachetop.config import InstanceConfig
from cachetop.hotkeys.conn import (
    HotKeysError,
    close_stream,
    open_redis_stream,
    parse_client_list,
    redis_client,
    redis_error_text,
    resp_command,
)
from cachetop.hotkeys.monitor_parser import MonitorParser, ParseResult, command_table_from_redis

CHUNK = 1 << 18


@dataclass(slots=True)
class MonitorStats:
    phases: int = 0
    lines: int = 0
    own_lines: int = 0
    max_omem: int = 0  # the largest omem the watchdog saw for our monitor client
    stops_for_omem: int = 0
    stops_for_timeout: int = 0
    skipped_bytes: int = 0  # MONITOR output read but not parsed (over the parse budget)
    own_commands: int = 0  # commands cachetop sent (they count in total_commands_processed)
    own_by_command: Counter[str] = field(default_factory=Counter)  # the same, per command name
    connected: bool = False  # a MONITOR connection is open right now
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
        parse_budget: int = 0,
        timeout: float = 2.0,
        check_s: float = 0.02,
        chunk: int = CHUNK,
        consumer_delay: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inst = inst
        self.sink = sink
        self.on_s = on_s
        self.off_s = off_s
        self.omem_limit = omem_limit
        self.parse_budget = parse_budget  # bytes/s; 0: parse everything
        self.stop_at = omem_limit // 2
        self.timeout = timeout
        self.check_s = check_s
        self.chunk = chunk
        self.consumer_delay = consumer_delay  # tests throttle the reader on purpose with this
        self.clock = clock
        self.stats = MonitorStats()
        self.phase = "starting"  # sampling | waiting | starting
        self._parser = MonitorParser()

    async def run(self) -> None:
        side = redis_client(self.inst, self.timeout, count=self._count)
        try:
            await self._load_command_table(side)
            while True:
                await self._sample_once(side)
                self.phase = "waiting"
                # Continuous sampling (off_s = 0) still backs off after the watchdog stopped it.
                await asyncio.sleep(self.off_s if self.off_s > 0 else 1.0 if self.stats.last_stop else 0)
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
        # Counted before they are sent, like every command of ours (see backends/redis.py).
        if self.inst.target.password:
            self._count("auth")
        for command in ("client|setname", "client|id", "monitor"):
            self._count(command)
        reader, writer, client_id = await open_redis_stream(self.inst, self.timeout)
        self.stats.connected = True
        stop = asyncio.Event()
        watchdog = asyncio.create_task(self._watch(side, client_id, writer, stop))
        try:
            writer.write(resp_command("MONITOR"))
            ok = await asyncio.wait_for(reader.readline(), self.timeout)
            if not ok.startswith(b"+OK"):
                raise HotKeysError(f"MONITOR refused: {ok[:200].decode(errors='replace').strip()}")
            self.phase = "sampling"
            self.stats.phases += 1
            await self._read(reader, stop)
        finally:
            await close_stream(writer)
            self.stats.connected = False
            await cancel_and_wait([watchdog])

    async def _read(self, reader: asyncio.StreamReader, stop: asyncio.Event) -> None:
        started = last = self.clock()
        deadline = started + self.on_s
        pending = b""
        # A token bucket of bytes, one second deep: bursts are parsed whole, a saturated server
        # is sampled. Skipped chunks are still read, so the server's output buffer stays small.
        tokens, refilled = float(self.parse_budget), started
        parsed_bytes = seen_bytes = 0
        resync = False
        while not stop.is_set():
            left = deadline - self.clock()
            if left <= 0:
                break
            try:
                data = await asyncio.wait_for(reader.read(self.chunk), left)
            except TimeoutError:
                data = b""
            if stop.is_set():
                break
            now = self.clock()
            out = ParseResult()
            if data:
                seen_bytes += len(data)
                if self.parse_budget:
                    tokens = min(float(self.parse_budget), tokens + (now - refilled) * self.parse_budget)
                    refilled = now
                    if tokens < len(data):
                        self.stats.skipped_bytes += len(data)
                        pending, resync = b"", True
                        continue  # `last` stays: this time is covered by the next parsed chunk
                    tokens -= len(data)
                if resync:  # the first line is the tail of a dropped one
                    data = data[data.find(b"\n") + 1 :]
                    resync = False
                parsed_bytes += len(data)
                pending = self._parser.feed(pending + data if pending else data, out)
            elif reader.at_eof():
                raise HotKeysError("the server closed the MONITOR connection")
            self.stats.lines += out.lines
            self.stats.own_lines += out.own
            # Rates are per second listened; when chunks were dropped, only the parsed share
            # of this stretch was heard.
            share = parsed_bytes / seen_bytes if seen_bytes else 1.0
            self.sink(out, (now - last) * share, now)
            parsed_bytes = seen_bytes = 0
            last = now
            if self.consumer_delay:
                await asyncio.sleep(self.consumer_delay)

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

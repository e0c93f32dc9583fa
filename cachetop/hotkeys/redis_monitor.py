"""Redis MONITOR, sampled on a bounded duty cycle (default 1 s on, 9 s off).

MONITOR costs the server throughput while it runs, and a monitor client that reads too slowly
makes the server buffer its output without limit (normal clients have no output buffer limit by
default; a forgotten MONITOR has OOM-killed servers). So:

* it runs at most `on_s` out of every `on_s + off_s` seconds, and a phase ends early once it
  has read `max_lines` lines: while MONITOR is on, every command costs the server the formatting
  of its line (a saturated Redis 7.0 loses about 60% of its throughput, even to a client that
  never reads), so a busy server must pay for a sample, not for a second;
* a watchdog reads the monitor client's `omem` in CLIENT LIST every `check_s` (on the poll
  connection in a process that polls the instance, else on a side connection of its own) and
  closes the monitor connection when omem reaches half the limit, so that what the server
  appends before it notices the close cannot carry omem past the limit;
* if that watchdog cannot get an answer within the timeout (the server is stuck), the monitor
  connection is closed too: we can no longer see what it costs;
* the connection is closed in `finally`, so a normal stop, Ctrl-C (task cancellation) and a crash
  all close it; if cachetop is SIGKILLed the kernel closes the socket and Redis frees the client;
* none of the above runs while cachetop is not scheduled (Ctrl-Z, SIGSTOP, a debugger, a stalled
  event loop), so a guard outside the process does: the guardian (guardian.py) is armed with the
  monitor's CLIENT ID before MONITOR is turned on, hears a heartbeat from the loop that reads the
  output, and ends the MONITOR with CLIENT KILL when the heartbeat stops for `stall` seconds. If
  the guardian cannot be started or goes away, MONITOR is not run (the status line says why);
* a stop signal that can be caught (SIGTSTP, SIGTTIN, SIGTTOU) ends the monitor connection
  before the process stops (suspend.py); sampling resumes on the next phase after SIGCONT.

Lines from cachetop's own connections (named `cachetop*`) are left out of the counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetop.engine.config import InstanceConfig
from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.conn import (
    HotKeysError,
    SideCommands,
    SideConnection,
    close_stream,
    parse_client_list,
    redis_error_text,
)
from cachetop.hotkeys.guardian_link import BEAT_S, GuardianLink
from cachetop.hotkeys.linecap import LineCap
from cachetop.hotkeys.monitor_guard import MonitorGuard, server_buffer_limit
from cachetop.hotkeys.monitor_parser import (
    MonitorParser,
    ParseResult,
    command_table_from_redis,
    command_table_reply,
)
from cachetop.hotkeys.sampler import SamplerReport
from cachetop.hotkeys.status_line import monitor_status
from cachetop.util.aio import OwnTrafficGate, cancel_and_wait

CHUNK = 1 << 18
# With a line cap, received chunks are parsed in batches this old or this big (see _read).
HOLD_S = 0.25
HOLD_BYTES = 4 << 20
# A MONITOR line longer than this is cut (its head, with the command and the key, still counts):
# a value of many megabytes, or a peer that never sends a newline, must not grow the reader.
MAX_LINE = 256 << 10


# After a phase, the watchdog's own connection (`cachetop hotkeys`: no poll connection to use)
# stays this long before it closes: other cachetop processes that poll at least this often see
# its last count (backends/viewers.py).
SIDE_LINGER_S = 3.0


@dataclass(slots=True)
class MonitorStats:
    phases: int = 0
    lines: int = 0
    own_lines: int = 0
    max_omem: int = 0  # the largest omem the watchdog saw for our monitor client
    stops_for_omem: int = 0
    stops_for_timeout: int = 0
    stops_for_lines: int = 0  # phases that ended early with max_lines read
    long_lines: int = 0  # lines longer than MAX_LINE: cut, only their head parsed
    stops_for_stall: int = 0  # phases the guardian ended: cachetop did not read for `stall` s
    stops_for_suspend: int = 0  # phases ended because the process was being suspended
    own_commands: int = 0  # commands cachetop sent (they count in total_commands_processed)
    own_by_command: Counter[str] = field(default_factory=Counter)  # the same, per command name
    connected: bool = False  # a MONITOR connection is open right now
    on_seconds: float = 0.0  # how long MONITOR has been on, all phases: what the server paid for
    last_stop: str = ""


Sink = Callable[[ParseResult, float, float], None]  # (result, observed seconds, now)


class MonitorSampler(MonitorGuard):
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
        stall: float = 0.5,
        guardian: GuardianLink | None = None,
        side: SideCommands | None = None,
    ) -> None:
        self.inst = inst
        self.stall = stall  # the guardian ends a MONITOR not read for this long
        self._guardian = guardian  # None: the process's shared guardian
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
        self._pending = b""  # a partial last line, at most MAX_LINE bytes (see linecap.py)
        self._cap = LineCap(MAX_LINE)
        # COMMAND, CONFIG GET and CLIENT LIST go here: the poll connection when the process polls
        # the instance (then a phase holds one connection more, the MONITOR), else our own.
        self._given_side = side
        self._side: SideCommands | None = None
        self._last = 0.0  # when the last parsed chunk arrived
        # The phase's monitor connection and guardian registration, for end_for_suspend.
        self._writer: asyncio.StreamWriter | None = None
        self._link: GuardianLink | None = None
        self._token = ""
        self._suspended = False  # a stop signal ended this phase's connection
        self._gone = False  # the watchdog found the monitor client gone from the server
        self._ended_by: str | None = None  # why this phase's connection ended, if not the server
        self._phase_on_s = 0.0  # how long MONITOR was on in the last phase
        # What the server itself does about a MONITOR's output buffer (see server_buffer_limit).
        self.server_limit = "unknown"

    async def run(self) -> None:
        side = self._side = self._given_side or SideConnection(
            self.inst, self.timeout, count=self._count, gate=self.gate
        )
        try:
            await self._load_command_table(side)
            self.server_limit = await server_buffer_limit(side)
            while True:
                started = self.clock()
                await self._sample_once(side)
                self.phase = "waiting"
                # One phase per on_s + off_s, however early it ended: the duty cycle is a ceiling.
                # Continuous sampling (off_s = 0) still backs off after the watchdog stopped it.
                if self.off_s > 0:
                    rest = started + self.on_s + self.off_s - self.clock()
                    if self._ended_by:
                        # Ended by a suspension or a stall, not by the server: rest in proportion
                        # to the on-time the server paid for, so a resumed `cachetop hotkeys`
                        # (one long phase) samples again soon, still within the duty cycle.
                        rest = min(rest, self._phase_on_s * self.off_s / self.on_s)
                else:
                    rest = 1.0 if self.stats.last_stop else 0.0
                if rest > SIDE_LINGER_S and side.connections:
                    # Between phases cachetop holds only its poll and probe connections. A side
                    # connection of our own lingers first, so that other cachetop processes' polls
                    # read its final count in its name (backends/viewers.py); it comes back, named
                    # and counted, with the next phase.
                    await asyncio.sleep(SIDE_LINGER_S)
                    rest -= SIDE_LINGER_S
                    await side.rest()
                await asyncio.sleep(max(rest, 0.0))
        finally:
            await side.close()

    async def _load_command_table(self, side: SideCommands) -> None:
        try:
            reply = await side.call("COMMAND")
            table = command_table_from_redis(command_table_reply(reply))
            if table:
                self._parser.commands = table
        except Exception:  # ACL may deny COMMAND: the built-in table covers the common commands
            pass

    @property
    def open_connections(self) -> int:
        """A side connection of our own (none on the poll connection) and, during a phase, the
        MONITOR connection."""
        side = self._side.connections if self._side is not None else 0
        return side + (1 if self.stats.connected else 0)

    @property
    def own_sent(self) -> Counter[str]:
        return self.stats.own_by_command  # on the side connection of its own, or claimed on the poll's

    own_reads = (0, 0)  # MONITOR reads no key

    def report(self, settings: HotKeySettings) -> SamplerReport:
        status, detail = monitor_status(self, settings)
        return SamplerReport(status, detail, "ops", max_omem=self.stats.max_omem)

    def _count(self, command: str, n: int = 1) -> None:
        self.stats.own_commands += n
        self.stats.own_by_command[command] += n

    async def _own_clients(self, side: SideCommands) -> set[bytes]:
        raw = await side.call("CLIENT", "LIST", "TYPE", "normal")
        raw_b = raw if isinstance(raw, bytes) else str(raw).encode()
        return {
            c.get(b"addr", b"")
            for c in parse_client_list(raw_b)
            if c.get(b"name", b"").startswith(b"cachetop")
        }

    async def _omem(self, side: SideCommands, client_id: int) -> int | None:
        raw = await side.call("CLIENT", "LIST", "ID", client_id)
        raw_b = raw if isinstance(raw, bytes) else str(raw).encode()
        for fields in parse_client_list(raw_b):
            if fields.get(b"id") == str(client_id).encode():
                return int(fields.get(b"omem", b"0"))
        return None  # gone: the server closed it

    async def _sample_once(self, side: SideCommands) -> None:
        self.stats.last_stop = ""
        try:
            self._parser.own_clients = await asyncio.wait_for(self._own_clients(side), self.timeout)
        except Exception as exc:
            raise HotKeysError(f"CLIENT LIST failed: {redis_error_text(self.inst, exc)}") from None
        self._suspended = False
        self._gone = False
        self._ended_by = None
        self._phase_on_s = 0.0
        try:
            reader, writer, client_id, on_at = await self._open_monitor()
        except Exception:
            if self._suspended:  # the connection was ended for a suspension while it opened
                self._stop_for_suspend()
                return
            raise
        stop = asyncio.Event()
        watchdog = asyncio.create_task(self._watch(side, client_id, writer, stop))
        try:
            self.phase = "sampling"
            self.stats.phases += 1
            await self._read(reader, stop)
            stop.set()  # the watchdog's last check, if one is out, is not about a close of ours
            off_at = self.clock()
            await close_stream(writer)  # MONITOR off first: the server stops paying for it
            self.stats.connected = False
            self._phase_on_s = off_at - on_at
            self.stats.on_seconds += off_at - on_at
            self._parse_held()
            if self._suspended or self._gone:  # not a phase that simply ran its course
                await self._why_ended()
        finally:
            if self.stats.connected:
                await close_stream(writer)
                self.stats.connected = False
                self._phase_on_s = self.clock() - on_at
                self.stats.on_seconds += self._phase_on_s
            self._end_guard()
            # The watchdog ends after its check in flight: a check cancelled half-way would
            # drop the poll connection it may be using (backends/redis.py run_own).
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait({watchdog}, timeout=self.timeout)
            await cancel_and_wait([watchdog])

    async def _read(self, reader: asyncio.StreamReader, stop: asyncio.Event) -> None:
        """Reads until on_s has passed, max_lines lines have arrived, or the watchdog says stop.

        With a line cap, chunks are held and parsed every HOLD_S (or HOLD_BYTES), and the last
        ones only after MONITOR is off: the server pays for MONITOR until we have *received*
        max_lines, not until we have counted them."""
        self._last = self.clock()
        self._pending = b""
        self._cap.new_stream()
        self._held = []
        held_bytes = 0
        deadline = self._last + self.on_s
        lines = 0
        while not stop.is_set():
            left = deadline - self.clock()
            if left <= 0:
                break
            # The heartbeat comes from this loop, so a reader that stops reading (a suspended
            # process, a blocked event loop) stops it, and the guardian ends the MONITOR.
            self._beat()
            try:
                # held chunks wait at most HOLD_S for the next one, also when none comes
                wait = min(left, HOLD_S, BEAT_S) if self.max_lines else min(left, BEAT_S)
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation
                # that arrives as a read completes, and MONITOR's reads complete all the time, so
                # a stop could leave this loop reading until the phase's end (tests/integration/
                # test_hotkeys_stop.py).
                async with asyncio.timeout(wait):
                    data = await reader.read(self.chunk)
            except TimeoutError:
                data = b""
            if stop.is_set():
                break
            if not data and reader.at_eof():
                self._parse_held()  # what arrived before the close is still a sample
                if await self._why_ended():
                    return
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
            data = self._cap.skip(data)
            if data:
                self._pending = self._parser.feed(self._pending + data if self._pending else data, out)
                head = self._cap.cut_if_long(self._pending)
                if head is not None:
                    self._parser.feed(head, out)
                    self._pending = b""
                    self.stats.long_lines += 1
            self.stats.lines += out.lines
            self.stats.own_lines += out.own
            self.sink(out, at - self._last, at)
            self._last = at
        self._held = []

    async def _watch(
        self, side: SideCommands, client_id: int, writer: asyncio.StreamWriter, stop: asyncio.Event
    ) -> None:
        """Closes the monitor connection before its output buffer can pass the limit. Returns
        without a check once `stop` is set (the phase ended)."""
        while not stop.is_set():
            try:
                async with asyncio.timeout(self.timeout):
                    omem = await self._omem(side, client_id)
            except Exception:
                if stop.is_set():
                    return
                self.stats.stops_for_timeout += 1
                self.stats.last_stop = "no answer from CLIENT LIST: sampling stopped"
                break
            if stop.is_set():
                return  # the phase ended while the check was out: MONITOR is closed by us
            if omem is None:
                # (a suspension or the guardian may have ended it: _why_ended says so after)
                self._gone = True
                self.stats.last_stop = "the server closed the MONITOR connection"
                break
            self.stats.max_omem = max(self.stats.max_omem, omem)
            if omem >= self.stop_at:
                self.stats.stops_for_omem += 1
                self.stats.last_stop = f"output buffer reached {omem} bytes: sampling paused"
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check_s):
                    await stop.wait()
        else:
            return
        stop.set()
        await close_stream(writer)

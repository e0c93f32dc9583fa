"""The guards around a MONITOR connection, and the server's own bound on its output buffer.

MonitorGuard (a mixin of MonitorSampler, redis_monitor.py) opens the monitor connection: it names
it, arms the guardian (guardian.py) with its CLIENT ID before MONITOR is turned on and keeps the
heartbeat going while the server answers; it ends the connection for a stop signal (suspend.py)
and tells, after the connection ended, whether a suspension or the guardian ended it.
server_buffer_limit reads what the server itself does about a MONITOR's output buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from cachetop.backends.viewers import claim_ahead
from cachetop.engine.config import InstanceConfig
from cachetop.hotkeys import suspend
from cachetop.hotkeys.conn import (
    HotKeysError,
    SideCommands,
    close_stream,
    open_stream,
    redis_hello,
    resp_command,
)
from cachetop.hotkeys.guardian_link import BEAT_S, GuardianLink, shared_guardian
from cachetop.util.aio import OwnTrafficGate
from cachetop.util.format import size


class MonitorGuard:
    """The monitor connection's opening and its guards; MonitorSampler holds the state below."""

    inst: InstanceConfig
    stats: Any  # MonitorStats (redis_monitor.py)
    gate: OwnTrafficGate | None
    clock: Callable[[], float]
    timeout: float
    stall: float
    _guardian: GuardianLink | None
    _writer: asyncio.StreamWriter | None
    _link: GuardianLink | None
    _token: str
    _suspended: bool
    _ended_by: str | None
    _count: Callable[..., None]

    def end_for_suspend(self, signum: int) -> None:
        """Called from the stop-signal handler (suspend.py): ends the monitor connection now.
        shutdown(2) sends the FIN at once; the event loop closes the transport after SIGCONT."""
        writer = self._writer
        if writer is None:
            return
        self._suspended = True
        suspend.shut_down_now(writer)
        if self._link is not None and self._token:
            self._link.disarm(self._token)  # the guardian has nothing left to end

    def _stop_for_suspend(self) -> None:
        self.stats.stops_for_suspend += 1
        self._ended_by = "suspend"
        self.stats.last_stop = "ended for a suspension (Ctrl-Z): sampling resumed after it"

    async def _why_ended(self) -> bool:
        """After the connection ended: if a suspension or the guardian ended it (not the server),
        says so in last_stop and returns True. Waits briefly for the guardian's report: the
        server drops the client before it answers the guardian's CLIENT KILL."""
        if self._ended_by:
            return True
        if self._suspended:
            self._stop_for_suspend()
            return True
        link, token = self._link, self._token
        if link is None or not token:
            return False
        deadline = self.clock() + min(self.timeout, 1.0)
        report = link.killed(token)
        while report is None and link.alive() and self.clock() < deadline:
            await asyncio.sleep(0.01)
            report = link.killed(token)
        if report is None:
            return False
        result, sent, _reason = report
        if sent:  # its commands count in total_commands_processed like ours: report them
            for command in ("auth",) * bool(self.inst.target.password) + ("client|setname", "client|kill"):
                self._count(command)
            # ...to other cachetop processes too, on the poll connection (backends/viewers.py):
            # the guardian's connection was gone before any of them could read its name.
            async with self.gate.shared() if self.gate is not None else contextlib.nullcontext():
                await claim_ahead(self.inst.target.host, self.inst.target.port, sent)
        if result == "error":
            return False  # it could not end it: whatever closed the connection, it was not us
        self.stats.stops_for_stall += 1
        self._ended_by = "stall"
        self.stats.last_stop = (
            f"not read for {self.stall:g}s (stopped or stalled): the guardian ended MONITOR"
        )
        return True

    def _end_guard(self) -> None:
        """The monitor connection is closed: nothing for the guardian or a suspension to end."""
        suspend.release(self)
        self._writer = None
        if self._link is not None and self._token:
            self._link.disarm(self._token)
        self._token = ""

    async def _open_monitor(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, float]:
        """Connects, names the connection and turns MONITOR on; returns when it is on."""
        # Counted before they are sent, like every command of ours (see backends/redis.py), and
        # answered before the poller's next INFO runs (the gate).
        # The connect (TCP, TLS) sends no command: outside the gate, so a slow one holds up no poll.
        link = self._guardian or shared_guardian()
        reader, writer = await open_stream(self.inst, self.timeout)
        self.stats.connected = True
        self._writer = writer
        suspend.protect(self)  # from here a stop signal ends this connection first
        try:
            async with self.gate.shared() if self.gate is not None else contextlib.nullcontext():
                if self.inst.target.password:
                    self._count("auth")
                for command in ("client|setname", "client|id"):
                    self._count(command)
                client_id = await redis_hello(self.inst, reader, writer, self.timeout)
            # The guardian must hold this client's ID before MONITOR is on; if it cannot,
            # GuardianError ends the phase with MONITOR never turned on.
            self._link, self._token = link, link.new_token()
            await link.arm(self._token, self.inst, client_id, self.stall, self.timeout)
            async with self.gate.shared() if self.gate is not None else contextlib.nullcontext():
                self._count("monitor")
                on_at = self.clock()
                writer.write(resp_command("MONITOR"))
                ok = await self._reply_while_beating(reader)
            if not ok.startswith(b"+OK"):
                raise HotKeysError(f"MONITOR refused: {ok[:200].decode(errors='replace').strip()}")
        except BaseException:
            await close_stream(writer)
            self.stats.connected = False
            self._end_guard()
            raise
        return reader, writer, client_id, on_at

    async def _reply_while_beating(self, reader: asyncio.StreamReader) -> bytes:
        """MONITOR's +OK: a slow server is not a stalled reader, so the heartbeat goes on."""
        deadline = self.clock() + self.timeout
        while True:
            self._beat()
            try:
                async with asyncio.timeout(min(BEAT_S, self.timeout)):
                    return await reader.readline()
            except TimeoutError:
                if self.clock() >= deadline:
                    raise

    def _beat(self) -> None:
        if self._link is not None and self._token:
            self._link.beat(self._token)


async def server_buffer_limit(side: SideCommands) -> str:
    """The server's own bound on a MONITOR's output buffer, in a few words for the status line.

    MONITOR clients are in the `normal` class (networking.c getClientType: a replica flag with
    the monitor flag is not a replica), so `client-output-buffer-limit normal <hard> ...` ends
    one whose buffer passes <hard>; `maxmemory-clients` (Redis 7+, Valkey) evicts clients once
    all of them together use more. Both are 0 by default: no bound. This is what still protects
    the server when cachetop and its guardian are frozen together (a suspended VM)."""
    try:
        limits = _pairs(await side.call("CONFIG", "GET", "client-output-buffer-limit"))
        clients = _pairs(await side.call("CONFIG", "GET", "maxmemory-clients"))
    except Exception:  # CONFIG denied by ACL or renamed: we cannot tell
        return "unknown"
    text = _config_value(limits, "client-output-buffer-limit").split()
    for i in range(0, len(text) - 3, 4):
        if text[i] == "normal" and text[i + 1].isdigit() and int(text[i + 1]) > 0:
            return f"{size(int(text[i + 1]))} (client-output-buffer-limit normal)"
    evict = _config_value(clients, "maxmemory-clients")
    if evict and evict not in ("0", "0%"):
        return f"maxmemory-clients {evict}"
    return "none"


def _pairs(reply: Any) -> dict[bytes, Any]:
    """CONFIG GET's raw reply, [name, value, name, value...], as a dict."""
    if not isinstance(reply, list):
        return {}
    return {k: v for k, v in zip(reply[::2], reply[1::2], strict=False) if isinstance(k, bytes)}


def _config_value(reply: Any, name: str) -> str:
    value = reply.get(name, reply.get(name.encode(), "")) if isinstance(reply, dict) else ""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

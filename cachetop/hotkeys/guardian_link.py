"""cachetop's end of the MONITOR guardian (see guardian.py): start it, arm it, feed it heartbeats.

One guardian process serves every MONITOR sampler of a cachetop process. Everything here is
plain, non-blocking file-descriptor I/O, not asyncio streams, so it works from any event loop and
from a signal handler (a suspend disarms before the process stops), and each message is one
write of less than PIPE_BUF bytes, so two writers never interleave.

If the guardian cannot be started, does not answer, or exits, `arm` and `beat` raise
GuardianError and the sampler does not run MONITOR (or ends it at once): an unguarded MONITOR is
what this is here to prevent.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cachetop.engine.config import InstanceConfig
from cachetop.hotkeys.conn import HotKeysError

GUARDIAN_PATH = str(Path(__file__).with_name("guardian.py"))
# -I: no environment variables, no user site, no current directory: starts fast and as written.
GUARDIAN_ARGV = (sys.executable, "-I", GUARDIAN_PATH)
BEAT_S = 0.1  # how often the MONITOR reader tells the guardian it is alive
START_S = 10.0  # the first answer may take a Python start-up on a busy machine
PIPE_BUF = 4096  # POSIX: writes up to this size to a pipe are atomic


class GuardianError(HotKeysError):
    """The guardian is not there to end a MONITOR nobody reads: MONITOR must not run."""


class GuardianLink:
    """A running guardian process and the pipes to it."""

    def __init__(self, argv: tuple[str, ...] | list[str] = GUARDIAN_ARGV) -> None:
        self.argv = tuple(argv)
        self._out = b""  # what the guardian said, not split into lines yet
        self._ready = False
        self._armed: set[str] = set()
        self._kills: dict[str, tuple[str, int, str]] = {}
        self._last_beat: dict[str, float] = {}
        self._next_token = 0
        self.broken = ""  # why the link is unusable, after "its guardian process" ("" while it works)
        try:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                # Its own session: a Ctrl-Z to cachetop's process group does not stop it, and
                # a SIGSTOP to cachetop does not either.
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            self.proc = None
            self.broken = f"could not be started ({type(exc).__name__}: {exc.strerror or exc})"
            return
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in_fd = self.proc.stdin.fileno()
        self._out_fd = self.proc.stdout.fileno()
        os.set_blocking(self._in_fd, False)
        os.set_blocking(self._out_fd, False)
        atexit.register(self.close)

    # --- liveness -------------------------------------------------------------------------

    def alive(self) -> bool:
        if self.broken:
            return False
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            self.broken = f"exited (status {code})"
            return False
        return True

    def error(self) -> GuardianError:
        """What the hot-keys status line says: MONITOR is never run without its guardian."""
        return GuardianError(f"MONITOR is off: its guardian process {self.broken}")

    def new_token(self) -> str:
        self._next_token += 1
        return f"m{self._next_token}"

    # --- messages ---------------------------------------------------------------------------

    def _send(self, line: bytes) -> None:
        if not self.alive():
            raise self.error()
        if len(line) > PIPE_BUF:
            self.broken = "cannot take this target (its settings pass one pipe write)"
            raise self.error()
        try:
            written = os.write(self._in_fd, line)
        except BlockingIOError:
            # It has not read 64 KiB of heartbeats: it is stopped or stuck, and cannot guard.
            self.broken = "stopped reading its pipe"
        except OSError as exc:  # BrokenPipeError: it exited
            self.broken = f"lost its pipe ({type(exc).__name__})"
        else:
            if written == len(line):
                return
            self.broken = "lost part of a message"
        raise self.error()

    def poll(self) -> None:
        """Reads what the guardian said so far (never blocks)."""
        if self.proc is None:
            return
        while True:
            try:
                data = os.read(self._out_fd, 65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            if not data:
                break
            self._out += data
        *lines, self._out = self._out.split(b"\n")
        for line in lines:
            words = line.decode(errors="replace").split(" ", 4)
            if words[0] == "ready":
                self._ready = True
            elif words[0] == "armed" and len(words) > 1:
                self._armed.add(words[1])
            elif words[0] == "killed" and len(words) > 3:
                self._armed.discard(words[1])
                self._kills[words[1]] = (words[2], int(words[3]), words[4] if len(words) > 4 else "")

    async def arm(
        self, token: str, inst: InstanceConfig, client_id: int, stall: float, timeout: float
    ) -> None:
        """Registers a monitor connection; returns once the guardian confirmed it."""
        target = inst.target
        spec = {
            "client_id": client_id,
            "host": target.host,
            "port": target.port,
            "tls": target.tls,
            "ca": inst.tls_ca_file,
            "cert": inst.tls_cert_file,
            "key": inst.tls_key_file,
            "verify": inst.tls_verify,
            "username": target.username,
            "password": target.password,  # through the pipe: never in argv or the environment
            "stall": stall,
            "timeout": timeout,
        }
        self._send(f"arm {token} {json.dumps(spec, separators=(',', ':'))}\n".encode())
        self._last_beat[token] = time.monotonic()
        deadline = time.monotonic() + (timeout if self._ready else max(timeout, START_S))
        while True:
            self.poll()
            if token in self._armed:
                return
            if not self.alive():
                raise self.error()
            if time.monotonic() > deadline:
                self.broken = "did not answer"
                raise self.error()
            await asyncio.sleep(0.005)

    def beat(self, token: str) -> None:
        """The MONITOR reader is alive. Raises GuardianError if the guardian is gone."""
        now = time.monotonic()
        if now - self._last_beat.get(token, 0.0) < BEAT_S / 2:
            return
        self._last_beat[token] = now
        self._send(f"beat {token}\n".encode())

    def disarm(self, token: str) -> None:
        """The monitor connection is closed. Never raises (also called from a signal handler)."""
        self._last_beat.pop(token, None)
        self._armed.discard(token)
        with contextlib.suppress(GuardianError):
            self._send(f"disarm {token}\n".encode())

    def killed(self, token: str) -> tuple[str, int, str] | None:
        """("killed" | "gone" | "error", commands it sent, reason) if the guardian acted."""
        self.poll()
        return self._kills.pop(token, None)

    def close(self, kill: bool = False) -> None:
        """Closes its stdin: it ends whatever is still armed, then exits. `kill`: one that stopped
        answering is killed instead (it would not read the end of its input)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        self.broken = self.broken or "was closed"
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]
        if kill:
            with contextlib.suppress(OSError):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)


_shared: GuardianLink | None = None


def shared_guardian() -> GuardianLink:
    """The process's guardian, started on first use and again if it died. May be broken: callers
    find out from arm(), which then raises GuardianError."""
    global _shared
    if _shared is None or not _shared.alive():
        if _shared is not None:
            _shared.close(kill=True)
        _shared = GuardianLink()
    return _shared

"""The MONITOR guardian: a small process that ends a MONITOR nobody is reading.

A Redis MONITOR client whose reader stops reading makes the server buffer every command it runs,
without limit by default (MONITOR clients are in the `normal` output-buffer class, unlimited
unless `client-output-buffer-limit normal` or `maxmemory-clients` say otherwise), and that buffer
counts against maxmemory: a suspended cachetop (Ctrl-Z, SIGSTOP, a debugger) made a busy 64 MB
allkeys-lru Redis evict its whole dataset in seconds. A guard inside cachetop cannot help when
cachetop is not running, so this one runs beside it:

* cachetop starts it in its own session (`start_new_session`), so a Ctrl-Z to cachetop's process
  group and a SIGSTOP to cachetop leave it running;
* before turning MONITOR on, a sampler arms it (the monitor connection's CLIENT ID and how to log
  in; the password travels through this pipe, never argv or the environment), and while MONITOR
  is on, the loop that reads MONITOR output sends a heartbeat every 0.1 s;
* when no heartbeat arrives for `stall` seconds, it connects (the only time it does), checks with
  `CLIENT LIST ID <id>` that the client is still cachetop's MONITOR (a restarted server hands
  out IDs from 1 again), sends `CLIENT KILL ID <id>`, and tells cachetop on stdout; when its
  stdin closes (cachetop exited or was killed), it kills whatever is still armed and exits.

It uses the standard library only and runs with `python -I` from its path, so it starts fast and
nothing from the environment changes it. Run it by hand with `python -m cachetop.hotkeys.guardian`.

Protocol, one line per message (each written with a single write, shorter than PIPE_BUF):

    cachetop -> guardian   arm <token> <json>   (client_id, host, port, tls, ..., stall, timeout)
                           beat <token>
                           disarm <token>
    guardian -> cachetop   ready
                           armed <token>
                           killed <token> <killed|gone|error> <commands sent> [reason]
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import ssl
import sys
import time
from dataclasses import dataclass
from typing import Any

CLIENT_NAME = "cachetop-guardian"
MAX_LINE = 64 << 10  # an arm line with a long password fits; anything longer is not from cachetop


@dataclass
class Armed:
    spec: dict[str, Any]
    last_beat: float
    stall: float
    retry_at: float = 0.0  # after a failed kill: when to try again


def _resp(*args: str | int) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def _connect(spec: dict[str, Any], timeout: float) -> socket.socket:
    sock = socket.create_connection((spec["host"], spec["port"]), timeout=timeout)
    if not spec.get("tls"):
        return sock
    ctx = ssl.create_default_context(cafile=spec.get("ca"))
    if spec.get("cert"):
        ctx.load_cert_chain(spec["cert"], spec.get("key"))
    if not spec.get("verify", True):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        return ctx.wrap_socket(sock, server_hostname=spec["host"])
    except BaseException:
        sock.close()  # a failed handshake must not leave the plain socket to the collector
        raise


def _read_reply(sock: socket.socket, buf: bytearray) -> bytes:
    while b"\r\n" not in buf:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("the server closed the connection")
        buf += data
        if len(buf) > MAX_LINE:
            raise ConnectionError("reply too long")
    line, _, rest = bytes(buf).partition(b"\r\n")
    buf[:] = rest
    return line


def _is_our_monitor(listing: bytes) -> bool:
    """Whether a `CLIENT LIST ID` entry is cachetop's MONITOR (and not a client that has its ID
    after a restart: IDs start again from 1 on a restarted server, or another node behind the
    same address)."""
    fields = dict(part.partition(b"=")[::2] for part in listing.split())
    monitoring = b"O" in fields.get(b"flags", b"") or fields.get(b"cmd") == b"monitor"
    return monitoring and fields.get(b"name", b"").startswith(b"cachetop")


def kill_monitor(spec: dict[str, Any]) -> tuple[str, int, str]:
    """CLIENT KILL ID on a fresh connection: ("killed" | "gone" | "error", commands sent, reason).

    The client is looked up first, on the same connection (one server run: its IDs are never
    reused), and killed only if it is still a cachetop MONITOR."""
    timeout = float(spec.get("timeout") or 2.0)
    client_id = int(spec["client_id"])
    commands: list[bytes] = []
    if spec.get("password"):
        auth = (spec["username"], spec["password"]) if spec.get("username") else (spec["password"],)
        commands.append(_resp("AUTH", *auth))
    commands.append(_resp("CLIENT", "SETNAME", CLIENT_NAME))
    commands.append(_resp("CLIENT", "LIST", "ID", client_id))
    try:
        sock = _connect(spec, timeout)
    except (OSError, ValueError) as exc:
        return "error", 0, f"cannot connect: {type(exc).__name__}"
    sent = len(commands)
    try:
        sock.settimeout(timeout)
        sock.sendall(b"".join(commands))
        buf = bytearray()
        replies = [_read_reply(sock, buf) for _ in commands]
        listing = replies[-1]
        if listing.startswith(b"$") and listing != b"$-1":
            listing = _read_reply(sock, buf)  # the bulk string's body: one client, one line
        elif listing.startswith(b"-"):
            # An error reply never holds the password (the server does not echo AUTH arguments).
            reason = next(r for r in replies if r.startswith(b"-"))
            return "error", sent, reason[:200].decode(errors="replace").lstrip("-")
        if not _is_our_monitor(listing):
            return "gone", sent, ""
        sock.sendall(_resp("CLIENT", "KILL", "ID", client_id))
        sent += 1
        last = _read_reply(sock, buf)
    except (OSError, ValueError) as exc:
        return "error", sent, f"no answer: {type(exc).__name__}"
    finally:
        with contextlib.suppress(OSError):
            sock.close()
    if last.startswith(b":"):  # the filter form of CLIENT KILL answers how many it killed
        return ("killed" if last != b":0" else "gone"), sent, ""
    return "error", sent, last[:200].decode(errors="replace").lstrip("-")


class Guardian:
    def __init__(self, out_fd: int) -> None:
        self.out_fd = out_fd
        self.armed: dict[str, Armed] = {}

    def say(self, line: str) -> None:
        """Tells cachetop; never blocks (a cachetop that does not read must not stop the guard)."""
        with contextlib.suppress(OSError):
            os.write(self.out_fd, line.encode() + b"\n")

    def handle(self, line: bytes, now: float) -> None:
        verb, _, rest = line.partition(b" ")
        token, _, payload = rest.partition(b" ")
        name = token.decode(errors="replace")
        if verb == b"beat":
            armed = self.armed.get(name)
            if armed is not None:
                armed.last_beat = now
        elif verb == b"arm":
            try:
                spec = json.loads(payload)
                stall = float(spec["stall"])
                int(spec["client_id"])
            except (ValueError, KeyError, TypeError):
                return  # not from cachetop: no "armed", so cachetop will not sample
            self.armed[name] = Armed(spec, now, stall)
            self.say(f"armed {name}")
        elif verb == b"disarm":
            self.armed.pop(name, None)

    def due(self, now: float) -> list[str]:
        return [token for token, a in self.armed.items() if now - a.last_beat > a.stall and now >= a.retry_at]

    def act(self, token: str) -> None:
        armed = self.armed[token]
        result, sent, reason = kill_monitor(armed.spec)
        self.say(f"killed {token} {result} {sent} {reason}".rstrip())
        if result == "error":
            armed.retry_at = time.monotonic() + armed.stall  # try again; the server may come back
        else:
            del self.armed[token]

    def next_wake(self, now: float) -> float | None:
        if not self.armed:
            return None
        return max(0.0, min(max(a.last_beat + a.stall, a.retry_at) - now for a in self.armed.values()))

    def run(self, in_fd: int) -> None:
        pending = b""
        self.say("ready")
        while True:
            now = time.monotonic()
            wake = self.next_wake(now)
            ready, _, _ = select.select([in_fd], [], [], wake)
            now = time.monotonic()
            if ready:
                data = os.read(in_fd, 65536)
                if not data:  # cachetop is gone: nobody will read what is still armed
                    for token in list(self.armed):
                        self.act(token)
                    return
                pending += data
                *lines, pending = pending.split(b"\n")
                if len(pending) > MAX_LINE:
                    pending = b""
                for line in lines:
                    self.handle(line, now)
            for token in self.due(time.monotonic()):
                self.act(token)


def main() -> int:
    # Signals meant for cachetop's terminal must not end the guard early: it ends when its stdin
    # closes. (SIGTERM and SIGKILL still end it; SIGTSTP from the terminal never reaches it.)
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.set_blocking(sys.stdout.fileno(), False)
    Guardian(sys.stdout.fileno()).run(sys.stdin.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())

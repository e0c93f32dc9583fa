"""The Backend protocol, the errors backends raise, and the blocking latency probe they share."""

from __future__ import annotations

import errno
import socket
import ssl
import time
from typing import Protocol

from cachetop.model import Sample, Status


class BackendError(Exception):
    """A poll failed. `reason` is short, human and free of secrets; `status` is what to show."""

    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Backend(Protocol):
    kind: str  # refined after the first poll: a redis:// URL may turn out to be Valkey

    async def poll(self, now: float) -> Sample:
        """One round trip of stats; raises BackendError."""
        ...

    def probe(self) -> float:
        """One blocking round trip that never touches the keyspace; returns seconds. Raises OSError."""
        ...

    def close_probe(self) -> None: ...

    async def close(self) -> None: ...


def reason_from_oserror(exc: BaseException, timeout: float) -> str:
    """A short reason a person can act on, from a socket-level failure."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or 'handshake failed'})"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "host unreachable"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return "connection failed"


class LineProbe:
    """A dedicated blocking socket that sends one tiny request and times the reply.

    It runs in a worker thread so a slow server never blocks the event loop, and it times only
    send -> first reply bytes, so the number is the network and the server, not our parsing.
    """

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        request: bytes,
        expect: bytes,
        ssl_context: ssl.SSLContext | None = None,
        hello: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.request, self.expect = request, expect
        self.ssl_context = ssl_context
        self.hello = hello or []  # (request, expected reply prefix) sent once per connection
        self._sock: socket.socket | None = None
        self.connects = 0

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        self.connects += 1
        for request, expected in self.hello:
            sock.sendall(request)
            reply = self._read_line(sock)
            if not reply.startswith(expected):
                sock.close()
                raise ProbeRejected(reply.decode("utf-8", "replace").strip()[:80])
        return sock

    @staticmethod
    def _read_line(sock: socket.socket) -> bytes:
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionResetError("server closed the connection")
            data += chunk
        return data

    def probe(self) -> float:
        if self._sock is None:
            self._sock = self._connect()
        sock = self._sock
        try:
            start = time.perf_counter()
            sock.sendall(self.request)
            reply = sock.recv(4096)
            elapsed = time.perf_counter() - start
            while reply and not reply.endswith(b"\r\n"):
                more = sock.recv(4096)
                if not more:
                    break
                reply += more
        except BaseException:
            self.close()
            raise
        if not reply:
            self.close()
            raise ConnectionResetError("server closed the connection")
        if not reply.startswith(self.expect):
            self.close()
            raise ProbeRejected(reply.decode("utf-8", "replace").strip()[:80])
        return elapsed

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


class ProbeRejected(OSError):
    """The server answered the probe with an error (NOAUTH, LOADING...)."""

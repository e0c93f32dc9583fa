"""The Backend protocol, the errors backends raise, and the blocking latency probe they share."""

from __future__ import annotations

import errno
import socket
import ssl
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

    async def probe(self) -> float:
        """One round trip that never touches the keyspace; returns seconds. Raises OSError."""
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

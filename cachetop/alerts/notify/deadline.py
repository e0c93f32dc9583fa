"""A total time limit for one delivery attempt: name lookup, connect, TLS, request and answer
together.

Socket timeouts bound each read and write only: a peer that sends one byte every few seconds
never trips them, and would hold a thread (and the daemon's shutdown) for ever. So every socket
an attempt opens is registered here, and when the limit passes, or the daemon stops, a timer
shuts it down. shutdown() acts on the connection rather than on one file descriptor, so it
also wakes a read blocked inside TLS on a socket that ssl has since wrapped (we hold a dup of
the descriptor): the sending thread returns at once and the socket is closed. Name lookup
cannot be interrupted, so it runs in a daemon thread that is waited on only for the time left.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from cachetop.alerts.notify import Retry

DEADLINE = "deadline"  # the attempt's time limit passed
SHUTDOWN = "shutdown"  # cachetop is stopping and will send the message again on its next start


class AttemptDeadline:
    """Use as a context manager around one attempt; pass `create_connection` wherever a library
    opens its sockets (http.client, smtplib)."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self._expires = time.monotonic() + limit_s
        self._lock = threading.Lock()
        self._opened: list[socket.socket] = []  # closed when the attempt ends, whatever happened
        self._handles: list[socket.socket] = []  # dups, so shutdown() reaches a socket ssl wrapped
        self.cut_reason: str | None = None
        self._timer = threading.Timer(limit_s, self.cut, (DEADLINE,))
        self._timer.daemon = True

    def __enter__(self) -> AttemptDeadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            sockets, self._opened, self._handles = self._opened + self._handles, [], []
        for sock in sockets:
            sock.close()

    def remaining(self) -> float:
        left = self._expires - time.monotonic()
        if self.cut_reason is not None or left <= 0:
            raise TimeoutError("the attempt's time limit passed")
        return left

    def cut(self, reason: str) -> None:
        """Ends the attempt now: every socket it opened is shut down (from any thread)."""
        with self._lock:
            if self.cut_reason is None:
                self.cut_reason = reason
            handles = list(self._handles)
        for handle in handles:
            with contextlib.suppress(OSError):
                handle.shutdown(socket.SHUT_RDWR)

    def create_connection(
        self, address: tuple[str, int], timeout: Any = None, source_address: Any = None
    ) -> socket.socket:
        """socket.create_connection, bounded by the time left (the per-operation timeout too)."""
        host, port = address
        last: OSError = OSError(f"no address for {host}")
        for family, kind, proto, _name, addr in self._resolve(host, port):
            sock = socket.socket(family, kind, proto)
            self._hold(sock)
            try:
                sock.settimeout(self.remaining())
                sock.connect(addr)
                return sock
            except OSError as exc:  # TimeoutError included
                last = exc
        raise last

    def _hold(self, sock: socket.socket) -> None:
        with self._lock:
            self._opened.append(sock)
            self._handles.append(sock.dup())
            already_cut = self.cut_reason is not None
        if already_cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _resolve(self, host: str, port: int) -> list[Any]:
        found: Future[list[Any]] = Future()

        def lookup() -> None:
            try:
                found.set_result(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
            except BaseException as exc:  # handed to the waiting thread
                found.set_exception(exc)

        threading.Thread(target=lookup, name="cachetop-resolve", daemon=True).start()
        return found.result(timeout=self.remaining())  # TimeoutError when the lookup hangs


def cut_outcome(what: str, deadline: AttemptDeadline) -> Retry | None:
    """What an attempt that was cut comes to, whatever error (or truncated answer) the cut left
    behind in the library; None when it was not cut."""
    if deadline.cut_reason == SHUTDOWN:
        return Retry(f"{what}: interrupted because cachetop is stopping (sent again on the next start)")
    if deadline.cut_reason is not None:
        return Retry(f"{what}: no complete answer within {deadline.limit_s:g}s (the channel's timeout)")
    return None


class Attempts:
    """The attempts a notifier has in flight, so that abort() can end them all at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[AttemptDeadline] = set()

    @contextlib.contextmanager
    def start(self, limit_s: float) -> Iterator[AttemptDeadline]:
        deadline = AttemptDeadline(limit_s)
        with self._lock:
            self._live.add(deadline)
        try:
            with deadline:
                yield deadline
        finally:
            with self._lock:
                self._live.discard(deadline)

    def abort(self) -> None:
        with self._lock:
            live = list(self._live)
        for deadline in live:
            deadline.cut(SHUTDOWN)

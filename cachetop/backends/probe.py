"""The latency probe: one tiny request that never touches the keyspace, timed honestly.

It runs in the event loop on a non-blocking socket of its own. The reply's arrival time comes
from the kernel (SO_TIMESTAMPNS), so a busy event loop (a screen redraw, a hundred other polls)
delays when we *read* the reply but not the time we report. Where the kernel gives no stamp
(TLS, other systems) it falls back to a monotonic clock read in the reply callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import sys
import time
from collections.abc import Callable

from cachetop.backends.viewers import forget_own, note_own

# Linux' value on every architecture that uses asm-generic; Python does not export the name.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
KERNEL_STAMPS = sys.platform.startswith("linux")
_ANC_SIZE = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0
# A probe's replies are one short line (+PONG, MN, VERSION 1.6.21, -NOAUTH ...): a peer that sends
# more without ending the line is not a cache server, and is not read any further.
PROBE_REPLY_MAX = 4096


class ProbeRejected(OSError):
    """The server answered the probe with an error (NOAUTH, LOADING...)."""


class ProbeReplyTooLong(OSError):
    def __init__(self) -> None:
        super().__init__(f"probe reply longer than {PROBE_REPLY_MAX} bytes: not a cache server")


class AsyncProbe:
    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        request: bytes | Callable[[int], bytes],
        expect: bytes,
        ssl_context: ssl.SSLContext | None = None,
        hello: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.request, self.expect = request, expect
        self.ssl_context = ssl_context
        self.hello = hello or []  # (request, expected reply prefix), sent once per connection
        self.connects = 0
        self.sent = 0  # requests written: the server counts each as a command, answered or not
        # Commands sent on the current connection, hello included; a callable request is built
        # from it (the Redis probe names itself with its count: backends/viewers.py).
        self.on_connection = 0
        self._sock: socket.socket | None = None
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._waiter: asyncio.Future[bytes] | None = None
        self._reply = b""
        self._arrived = 0.0
        self._stamp: int | None = None

    @property
    def connected(self) -> bool:
        return self._sock is not None or self._streams is not None

    async def probe(self) -> float:
        """One round trip, in seconds. Raises OSError (TimeoutError after `timeout`)."""
        try:
            return await self._probe()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            # Streams (TLS) end with EOFError, not OSError: a dropped connection all the same.
            raise ConnectionResetError("server closed the connection") from None

    async def _probe(self) -> float:
        try:
            if not self.connected:
                await asyncio.wait_for(self._connect(), self.timeout)
            if self._streams is not None:
                return await asyncio.wait_for(self._probe_stream(*self._streams), self.timeout)
            assert self._sock is not None
            return await self._probe_socket(self._sock)
        except BaseException:
            self.close()
            raise

    async def _connect(self) -> None:
        if self.ssl_context is not None:
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.ssl_context, server_hostname=self.host
            )
            self._streams = (reader, writer)
            self.connects += 1
            note_own(writer.get_extra_info("sockname"))
            self.on_connection = len(self.hello)
            for request, expected in self.hello:
                writer.write(request)
                await writer.drain()
                self._check(await reader.readuntil(b"\r\n"), expected)
            return
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if KERNEL_STAMPS:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            await loop.sock_connect(sock, address)
            self.connects += 1
            note_own(sock.getsockname())
            self.on_connection = len(self.hello)
            for request, expected in self.hello:
                await loop.sock_sendall(sock, request)
                self._check(await self._read_line(loop, sock), expected)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        loop.add_reader(sock.fileno(), self._on_readable)

    @staticmethod
    async def _read_line(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = await loop.sock_recv(sock, 4096)
            if not chunk:
                raise ConnectionResetError("server closed the connection")
            data += chunk
            if len(data) > PROBE_REPLY_MAX:
                raise ProbeReplyTooLong()
        return data

    def _check(self, reply: bytes, expected: bytes) -> None:
        if not reply.startswith(expected):
            raise ProbeRejected(reply.decode("utf-8", "replace").strip()[:80])

    def _on_readable(self) -> None:
        """Registered once per connection: re-registering per probe costs two syscalls."""
        sock, waiter = self._sock, self._waiter
        if sock is None:
            return
        try:
            data, ancdata, _, _ = sock.recvmsg(4096, _ANC_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            return
        if waiter is None or waiter.done():
            return  # nothing asked (a late reply after a timeout): the connection is dropped anyway
        if not data:
            waiter.set_exception(ConnectionResetError("server closed the connection"))
            return
        if not self._reply:
            self._arrived = time.perf_counter()
            self._stamp = None
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
                    seconds, nanos = struct.unpack("qq", payload[:16])
                    self._stamp = seconds * 1_000_000_000 + nanos
        self._reply += data
        if self._reply.endswith(b"\r\n"):
            waiter.set_result(self._reply)
        elif len(self._reply) > PROBE_REPLY_MAX:
            waiter.set_exception(ProbeReplyTooLong())

    async def _probe_socket(self, sock: socket.socket) -> float:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bytes] = loop.create_future()
        self._waiter, self._reply = waiter, b""

        def on_timeout() -> None:
            if not waiter.done():
                waiter.set_exception(TimeoutError(f"no reply within {self.timeout:g}s"))

        # A timer rather than wait_for(): wait_for wraps every probe in a Task, which costs more
        # CPU than the round trip itself. It also bounds a reply that arrives in pieces.
        timer = loop.call_later(self.timeout, on_timeout)
        try:
            request = self._next_request()
            sent_wall = time.time_ns()
            sent = time.perf_counter()
            sock.send(request)  # a few bytes on an idle socket: never partial
            reply = await waiter
        finally:
            timer.cancel()
            self._waiter = None
        self._check(reply, self.expect)
        elapsed = self._arrived - sent
        if self._stamp is not None:
            kernel = (self._stamp - sent_wall) / 1e9
            # The wall clock can step (NTP); trust the kernel stamp only when it is plausible.
            if 0 < kernel <= elapsed:
                elapsed = kernel
        return elapsed

    async def _probe_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
        request = self._next_request()
        sent = time.perf_counter()
        writer.write(request)
        reply = await reader.readuntil(b"\r\n")
        elapsed = time.perf_counter() - sent
        self._check(reply, self.expect)
        return elapsed

    def _next_request(self) -> bytes:
        self.sent += 1
        self.on_connection += 1
        return self.request(self.on_connection) if callable(self.request) else self.request

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                forget_own(sock.getsockname())
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()
        streams, self._streams = self._streams, None
        if streams is not None:
            forget_own(streams[1].get_extra_info("sockname"))
            streams[1].close()

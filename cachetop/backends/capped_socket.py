"""A reply cap for blocking clients that read from a plain socket (pymemcache, for memcached evict).

pymemcache reads a reply line by line with no limit: a peer that streams a line without end grows
the client without bound (its socket timeout is per recv, so a steady stream never times out).
CappedSocketModule is passed as pymemcache's `socket_module`; every socket it makes allows each
request a reply of at most REPLY_BASE bytes plus REPLY_PER_BYTE for every byte sent (a batch of
keys gets room for a reply line per key), and raises ReplyTooLarge past that.
"""

from __future__ import annotations

import socket
from typing import Any

from pymemcache.exceptions import MemcacheError

REPLY_BASE = 64 * 1024
REPLY_PER_BYTE = 16  # `me <key>` (key + 5 bytes) is answered by `ME <key> exp=...` (key + ~80)


class ReplyTooLarge(MemcacheError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"reply exceeded {limit // 1024} KiB: not a cache server, or a hostile one")


class CappedSocket:
    """A socket whose replies are counted from each request on (a send after a read starts one)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._allowed = 0
        self._read = 0

    def sendall(self, data: bytes, *args: Any) -> None:
        if self._read:  # a new request: the last reply was read
            self._allowed = self._read = 0
        self._allowed += REPLY_BASE + REPLY_PER_BYTE * len(data)
        self._sock.sendall(data, *args)

    def recv(self, size: int, *args: Any) -> bytes:
        data = self._sock.recv(size, *args)
        self._read += len(data)
        if self._read > self._allowed:
            raise ReplyTooLarge(self._allowed)
        return data

    def __getattr__(self, name: str) -> Any:  # settimeout, connect, close...: the socket's own
        return getattr(self._sock, name)


class CappedSocketModule:
    """The `socket` module, whose socket() makes CappedSockets (for pymemcache's socket_module)."""

    def socket(self, *args: Any, **kwargs: Any) -> CappedSocket:
        return CappedSocket(socket.socket(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(socket, name)

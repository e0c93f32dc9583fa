"""A loopback TCP proxy that holds every reply chunk for a fixed delay before passing it on.

It stands in for a far-away server: the real server answers, the network is just slower.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections import deque


class DelayProxy:
    def __init__(self, upstream_port: int, delay_s: float) -> None:
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        self.listener.setblocking(False)
        sel.register(self.listener, selectors.EVENT_READ, None)
        peers: dict[socket.socket, socket.socket] = {}
        pending: dict[socket.socket, deque[tuple[float, bytes]]] = {}  # client socket -> delayed replies
        upstreams: set[socket.socket] = set()
        while not self._stop.is_set():
            now = time.monotonic()
            due = [q[0][0] for q in pending.values() if q]
            timeout = max(0.0, min(due) - now) if due else 0.05
            for key, _ in sel.select(timeout=min(timeout, 0.05)):
                sock = key.fileobj
                if sock is self.listener:
                    client, _ = self.listener.accept()
                    upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                    for s in (client, upstream):
                        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        s.setblocking(False)
                        sel.register(s, selectors.EVENT_READ, None)
                    peers[client], peers[upstream] = upstream, client
                    pending[client] = deque()
                    upstreams.add(upstream)
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                other = peers.get(sock)
                if not data or other is None:
                    for s in (sock, other):
                        if s is not None and s in peers:
                            sel.unregister(s)
                            s.close()
                            peers.pop(s, None)
                            pending.pop(s, None)
                            upstreams.discard(s)
                    continue
                if sock in upstreams:
                    pending[other].append((time.monotonic() + self.delay_s, data))
                else:
                    other.sendall(data)
            now = time.monotonic()
            for client, queue in pending.items():
                while queue and queue[0][0] <= now:
                    client.setblocking(True)
                    client.sendall(queue.popleft()[1])
                    client.setblocking(False)
        for s in list(peers):
            s.close()

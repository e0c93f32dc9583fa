"""The cache-aside workload of tests/sizing_workload.py over the memcached text protocol: a batch of
pipelined `get`s, then a `set ... noreply` per miss. Same keys, same Zipf, same seed.

python -m tests.sizing_workload_mc PORT [--requests N] [--forever] ..."""

from __future__ import annotations

import socket

from tests import sizing_workload
from tests.sizing_workload import Zipf


class MemcachedCacheAside:
    def __init__(
        self,
        port: int,
        *,
        keys: int = 300_000,
        alpha: float = 0.9,
        value_bytes: int = 1024,
        seed: int = 1,
        batch: int = 500,
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.zipf = Zipf(keys, alpha, seed)
        self.batch = batch
        self.value = b"v" * value_bytes
        self._gets = [b"get key:%d\r\n" % i for i in range(keys)]
        self._buf = b""
        self.requests = self.hits = self.misses = 0

    def _hits(self, n: int) -> list[bool]:
        """Reads n replies: True for a VALUE ... END, False for a bare END."""
        out: list[bool] = []
        buf = self._buf
        pos = 0
        while len(out) < n:
            if buf.startswith(b"END\r\n", pos):
                out.append(False)
                pos += 5
                continue
            if buf.startswith(b"VALUE ", pos):
                eol = buf.find(b"\r\n", pos)
                if eol >= 0:
                    length = int(buf[pos:eol].rsplit(b" ", 1)[1])
                    end = eol + 2 + length + 2 + 5
                    if len(buf) >= end:
                        out.append(True)
                        pos = end
                        continue
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("the server closed the connection")
            buf = buf[pos:] + data
            pos = 0
        self._buf = buf[pos:]
        return out

    def run(self, requests: int) -> None:
        done = 0
        tail = b" 0 0 %d noreply\r\n%s\r\n" % (len(self.value), self.value)
        while done < requests:
            n = min(self.batch, requests - done)
            ids = self.zipf.draw(n).tolist()
            self.sock.sendall(b"".join([self._gets[i] for i in ids]))
            hits = self._hits(n)
            missed = [i for i, hit in zip(ids, hits, strict=True) if not hit]
            if missed:
                self.sock.sendall(b"".join([b"set key:%d%s" % (i, tail) for i in missed]))
            self.hits += n - len(missed)
            self.misses += len(missed)
            done += n
        self.requests += done


def main(argv: list[str] | None = None) -> int:
    return sizing_workload.main(argv, MemcachedCacheAside)


if __name__ == "__main__":
    raise SystemExit(main())

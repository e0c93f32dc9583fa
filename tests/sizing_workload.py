"""A fast cache-aside workload for the sizing tests and bench/sizing.py: Zipf keys, GET, and on a
miss SET (value of `value_bytes`), pipelined over a raw socket (hiredis parses the replies).

Deterministic: the same seed gives the same key sequence. Keys are `key:<n>`; Zipf ranks are
shuffled over the key numbers so the hot keys are not the small numbers. A batch of GETs goes in
one write, then the SETs for its misses: a key missing twice in one batch misses twice (a client
with concurrent requests does the same).

Run as a process: python -m tests.sizing_workload PORT [--requests N] [--seed S] ... ; it prints
one line of JSON (requests, hits, misses, seconds) when done, or runs until killed with --forever.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from typing import Any

import hiredis
import numpy as np


class Zipf:
    def __init__(self, keys: int, alpha: float, seed: int) -> None:
        weights = 1.0 / np.arange(1, keys + 1, dtype=np.float64) ** alpha
        self.cdf = np.cumsum(weights) / weights.sum()
        self.rng = np.random.default_rng(seed)
        self.rank_to_key = self.rng.permutation(keys)

    def draw(self, n: int) -> np.ndarray:
        ranks = np.minimum(np.searchsorted(self.cdf, self.rng.random(n)), len(self.cdf) - 1)
        return self.rank_to_key[ranks]


def _get(key: bytes) -> bytes:
    return b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)


class CacheAside:
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
        value = b"v" * value_bytes
        self._set_tail = b"\r\n$%d\r\n%s\r\n" % (len(value), value)
        self._gets = [_get(b"key:%d" % i) for i in range(keys)]
        self.requests = self.hits = self.misses = 0

    def _replies(self, n: int) -> list:
        reader = self._reader
        out = []
        while len(out) < n:
            reply = reader.gets()
            if reply is False:
                data = self.sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("the server closed the connection")
                reader.feed(data)
                continue
            out.append(reply)
        return out

    def run(self, requests: int) -> None:
        self._reader = hiredis.Reader()
        done = 0
        while done < requests:
            n = min(self.batch, requests - done)
            ids = self.zipf.draw(n).tolist()
            self.sock.sendall(b"".join([self._gets[i] for i in ids]))
            replies = self._replies(n)
            missed = [i for i, r in zip(ids, replies, strict=True) if r is None]
            if missed:
                sets = [
                    b"*3\r\n$3\r\nSET\r\n$%d\r\nkey:%d%s" % (len(b"key:%d" % i), i, self._set_tail)
                    for i in missed
                ]
                self.sock.sendall(b"".join(sets))
                for r in self._replies(len(missed)):
                    if isinstance(r, hiredis.ReplyError):
                        raise r
            self.hits += n - len(missed)
            self.misses += len(missed)
            done += n
        self.requests += done

    def close(self) -> None:
        self.sock.close()


def main(argv: list[str] | None = None, workload: Any = None) -> int:
    """`workload`: the class to run (CacheAside; sizing_workload_mc passes its memcached one)."""
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--requests", type=int, default=1_000_000)
    p.add_argument("--keys", type=int, default=300_000)
    p.add_argument("--alpha", type=float, default=0.9)
    p.add_argument("--value-bytes", type=int, default=1024)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--forever", action="store_true")
    a = p.parse_args(argv)
    w = (workload or CacheAside)(a.port, keys=a.keys, alpha=a.alpha, value_bytes=a.value_bytes, seed=a.seed)
    started = time.monotonic()
    while True:
        w.run(a.requests)
        if not a.forever:
            break
    print(
        json.dumps(
            {
                "requests": w.requests,
                "hits": w.hits,
                "misses": w.misses,
                "seconds": round(time.monotonic() - started, 3),
            }
        )
    )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Keyspaces of known make-up for the keyspace analysis tests and bench/keyspace.py, loaded fast
(generated protocol through `redis-cli --pipe`, or one pipelined socket for memcached), and the
exact figures to hold the estimates against (a full pass of MEMORY USAGE over every key)."""

from __future__ import annotations

import json
import random
import socket
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

WORDS = [b"alpha", b"beta", b"gamma", b"delta", b"cart", b"order", b"paid", b"shipped", b"note", b"red"]


def resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def pipe_into_redis(port: int, commands: Iterable[bytes]) -> None:
    """Sends generated protocol with `redis-cli --pipe` (fails on any error reply)."""
    data = b"".join(commands)
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "--pipe"], input=data, capture_output=True, check=True, timeout=120
    ).stdout
    assert b"errors: 0" in out, out[-300:]


@dataclass
class Prefix:
    pattern: str  # as the analysis names it (the hot-key roll-up)
    keys: list[bytes] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)  # strings only
    with_ttl: bool = True


def five_prefixes(scale: float = 1.0, seed: int = 14) -> tuple[dict[str, Prefix], list[bytes]]:
    """1,000,000 keys at scale 1: sess:* 400k short strings (TTL 30 min-2 h), user:*:profile 150k
    compressible JSON (TTL 2 d), blob:* 50k random bytes (TTL 1-20 h), cfg:* 100k hashes of 2-20
    fields (no TTL), rate:* 300k small integers (TTL 10 min-1 h)."""
    rng = random.Random(seed)
    spec = {p.pattern: p for p in (Prefix("sess:*"), Prefix("user:*:profile"), Prefix("blob:*"))}
    spec["cfg:*"] = Prefix("cfg:*", with_ttl=False)
    spec["rate:*"] = Prefix("rate:*")
    out: list[bytes] = []
    for i in range(int(400_000 * scale)):
        key, value = b"sess:%d" % i, rng.randbytes(rng.randint(8, 40)).hex().encode()
        spec["sess:*"].keys.append(key)
        out.append(resp(b"SET", key, value, b"EX", b"%d" % rng.randint(1800, 7200)))
    for i in range(int(150_000 * scale)):
        key = b"user:%d:profile" % i
        doc = {
            "id": i,
            "name": f"user {i}",
            "email": f"user{i}@example.com",
            "bio": b" ".join(rng.choices(WORDS, k=rng.randint(20, 120))).decode(),
            "prefs": {"theme": rng.choice(["dark", "light"]), "lang": rng.choice(["en", "fr", "de"])},
        }
        value = json.dumps(doc).encode()
        spec["user:*:profile"].keys.append(key)
        spec["user:*:profile"].values.append(value)
        out.append(resp(b"SET", key, value, b"EX", b"172800"))
    for i in range(int(50_000 * scale)):
        key, value = b"blob:%d" % i, rng.randbytes(rng.randint(300, 1500))
        spec["blob:*"].keys.append(key)
        spec["blob:*"].values.append(value)
        out.append(resp(b"SET", key, value, b"EX", b"%d" % rng.randint(3600, 72000)))
    for i in range(int(100_000 * scale)):
        key = b"cfg:%d" % i
        fields: list[bytes] = []
        for f in range(rng.randint(2, 20)):
            fields += [b"f%d" % f, b"%d" % rng.randint(0, 10**6)]
        spec["cfg:*"].keys.append(key)
        out.append(resp(b"HSET", key, *fields))
    for i in range(int(300_000 * scale)):
        key = b"rate:%d" % i
        spec["rate:*"].keys.append(key)
        out.append(resp(b"SET", key, b"%d" % rng.randint(0, 5000), b"EX", b"%d" % rng.randint(600, 3600)))
    return spec, out


def _chunks(items: list[bytes], n: int) -> Iterator[list[bytes]]:
    for start in range(0, len(items), n):
        yield items[start : start + n]


def raw_replies(port: int, commands: list[bytes], expect: int) -> list[bytes]:
    """Pipelines pre-encoded commands on one socket and returns each integer/bulk-less reply line
    (`:123`, `$-1`...); for replies that are one line each (MEMORY USAGE, PTTL, EXISTS)."""
    lines: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for chunk in _chunks(commands, 20_000):
            sock.sendall(b"".join(chunk))
            buf = b""
            got: list[bytes] = []
            while len(got) < len(chunk):
                data = sock.recv(1 << 20)
                assert data, "server closed"
                buf += data
                *complete, buf = buf.split(b"\r\n")
                got += complete
            assert not buf
            lines += got
    assert len(lines) == expect
    return lines


def memory_usage(port: int, keys: list[bytes]) -> int:
    """The exact sum of `MEMORY USAGE key SAMPLES 0` over the keys (every key must exist)."""
    lines = raw_replies(port, [resp(b"MEMORY", b"USAGE", k, b"SAMPLES", b"0") for k in keys], len(keys))
    assert all(line.startswith(b":") for line in lines), "a key vanished"
    return sum(int(line[1:]) for line in lines)


def memcached_load(port: int, items: Iterable[tuple[bytes, bytes, int]]) -> None:
    """Stores (key, value, exptime) items with noreply sets on one socket, then waits for `mn`."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        batch: list[bytes] = []
        for key, value, exptime in items:
            batch.append(b"set %s 0 %d %d noreply\r\n%s\r\n" % (key, exptime, len(value), value))
            if len(batch) >= 5000:
                sock.sendall(b"".join(batch))
                batch = []
        sock.sendall(b"".join(batch) + b"mn\r\n")
        buf = b""
        while not buf.endswith(b"MN\r\n"):
            data = sock.recv(65536)
            assert data, "memcached closed"
            buf += data
        assert b"ERROR" not in buf, buf[:200]

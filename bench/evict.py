"""Pattern eviction: `cachetop evict --pattern` against `redis-cli --scan --pattern P | xargs
redis-cli unlink`, in the same run, on the same server, with the server's latency probe p99
measured during each (PING round trips every 2 ms on their own connection, the dashboard's probe).

Each round loads 300,000 `sess:*` and 30,000 `user:*` keys (redis-cli --pipe), evicts `sess:*`
one way, checks that exactly the 30,000 `user:*` keys remain, and the two ways alternate so
drift hits both alike. Wall time includes process start-up for both. A last run shows the
default throttle (20,000 keys/s) and what it does to the probe's p99.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cachetop.backends.probe import AsyncProbe
from cachetop.servers import LocalServer, redis_server

SESSIONS = 300_000
USERS = 30_000
ROUNDS = 3
PROBE_GAP_S = 0.002


def resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def load(server: LocalServer, sessions: int) -> None:
    data = b"".join(resp(b"SET", b"sess:%d" % i, b"v") for i in range(sessions))
    data += b"".join(resp(b"SET", b"user:%d" % i, b"v") for i in range(USERS))
    subprocess.run(
        ["redis-cli", "-p", str(server.port), "--pipe"], input=data, capture_output=True, check=True
    )


def dbsize(server: LocalServer) -> int:
    out = subprocess.run(["redis-cli", "-p", str(server.port), "dbsize"], capture_output=True, text=True)
    return int(out.stdout)


class ProbeThread:
    """PING every PROBE_GAP_S from its own loop, as the dashboard's probe does; keeps the RTTs."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        probe = AsyncProbe("127.0.0.1", self.port, 2.0, b"*1\r\n$4\r\nPING\r\n", b"+PONG")
        try:
            while not self.stop.is_set():
                self.samples.append(await probe.probe())
                await asyncio.sleep(PROBE_GAP_S)
        finally:
            probe.close()

    def __enter__(self) -> ProbeThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def p99_ms(self) -> float:
        return (
            statistics.quantiles(self.samples, n=100)[98] * 1000 if len(self.samples) > 10 else float("nan")
        )


STATE = Path(tempfile.mkdtemp(prefix="cachetop-bench-"))
TOOL_RATES: list[float] = []  # keys/s by the tool's own clock (from the audit log), start-up excluded


def run_cachetop(server: LocalServer, rate: str = "0") -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(STATE)}
    argv = [
        sys.executable,
        "-m",
        "cachetop",
        "evict",
        server.url,
        "--pattern",
        "sess:*",
        "--yes",
        "--rate",
        rate,
    ]
    subprocess.run([*argv, "--json"], check=True, capture_output=True, env=env, stdin=subprocess.DEVNULL)
    last = json.loads((STATE / "cachetop" / "audit.jsonl").read_text().splitlines()[-1])
    TOOL_RATES.append(last["evicted"] / last["elapsed_s"])


def run_reference(server: LocalServer) -> None:
    p = str(server.port)
    cmd = f"redis-cli -p {p} --scan --pattern 'sess:*' | xargs redis-cli -p {p} unlink > /dev/null"
    subprocess.run(["bash", "-c", cmd], check=True)


def timed(server: LocalServer, sessions: int, how: Callable[[], None]) -> tuple[float, float]:
    load(server, sessions)
    assert dbsize(server) == sessions + USERS
    with ProbeThread(server.port) as probe:
        start = time.perf_counter()
        how()
        elapsed = time.perf_counter() - start
    left = dbsize(server)
    assert left == USERS, f"{left} keys left, expected exactly the {USERS} user:* keys"
    subprocess.run(["redis-cli", "-p", str(server.port), "flushall"], check=True, capture_output=True)
    return sessions / elapsed, probe.p99_ms()


def main() -> None:
    with redis_server() as server:
        with ProbeThread(server.port) as idle:
            time.sleep(1.0)
        ours: list[tuple[float, float]] = []
        ref: list[tuple[float, float]] = []
        for i in range(ROUNDS):
            pair = [("ours", lambda: run_cachetop(server)), ("ref", lambda: run_reference(server))]
            for name, how in pair if i % 2 == 0 else pair[::-1]:
                (ours if name == "ours" else ref).append(timed(server, SESSIONS, how))
        tool_rate = statistics.median(TOOL_RATES)
        throttled = timed(server, 100_000, lambda: run_cachetop(server, "20000"))
    shutil.rmtree(STATE, ignore_errors=True)
    ours_rate = statistics.median(r for r, _ in ours)
    ref_rate = statistics.median(r for r, _ in ref)
    ours_p99 = statistics.median(p for _, p in ours)
    ref_p99 = statistics.median(p for _, p in ref)
    head = f"evict {SESSIONS:,} sess:* of {SESSIONS + USERS:,} keys"
    print(f"{head}, median of {ROUNDS} rounds (wall time, with start-up)")
    print(f"  probe p99 idle:                             {idle.p99_ms():6.3f} ms")
    line = "  {:<43} {:>10,.0f} keys/s   probe p99 {:6.3f} ms"
    print(line.format("redis-cli --scan | xargs redis-cli unlink:", ref_rate, ref_p99))
    print(line.format("cachetop evict --pattern --rate 0:", ours_rate, ours_p99))
    print(f"  ratio cachetop / reference:                 {ours_rate / ref_rate:10.2f}x  (goal >= 2x)")
    own = f"{tool_rate:>10,.0f} keys/s   ({tool_rate / ref_rate:.2f}x)"
    print(f"  cachetop by its own clock (no start-up):    {own}")
    rate, p99 = throttled
    print(line.format("cachetop evict --rate 20000 (default), 100k:", rate, p99))


if __name__ == "__main__":
    main()

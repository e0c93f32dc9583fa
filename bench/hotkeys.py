"""Hot-key benchmarks, each against a reference measured in the same run (about 90 s in all).

1. MONITOR reader: lines/s our raw-socket reader sustains under `redis-benchmark -P 16`, against
   redis-py's `monitor().listen()` on the same load; whether it keeps up (lines / commands the
   server ran) and the largest `omem` the server buffered for each reader.
2. Top-k: µs per event of the collector's ingest path and of plain Space-Saving, against an
   exact collections.Counter.
3. Precision of the top 20 at Zipf 0.8 / 1.0 / 1.2 against exact counts.
4. What sampling costs the server: redis-benchmark throughput with the sampler at its default
   duty cycle (1 s on / 9 s off) against no sampler, in alternating 10 s windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator

import redis

from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.hotkeys.collector import HotKeyCollector
from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.conn import close_stream, open_redis_stream, parse_client_list, resp_command
from cachetop.hotkeys.monitor_parser import ParseResult
from cachetop.hotkeys.redis_monitor import MonitorSampler
from cachetop.metrics.topk import SpaceSaving
from cachetop.servers import LocalServer, redis_server
from cachetop.util.aio import cancel_and_wait

READ_S = 3.0
REPEATS = 3
COST_ROUNDS = 4
SLICE_S = 0.25  # throughput slices while MONITOR is on / off
CORES = sorted(os.sched_getaffinity(0))[:2]  # the server's core, and everyone else's
PINNED = len(CORES) == 2 and shutil.which("taskset") is not None


def pin_server(server: LocalServer) -> None:
    """redis-server gets one core to itself; this process (and its threads) and the load share
    the other. A production Redis has its core: what cachetop costs it should not be CPU that
    cachetop and the load generator take from it on a 2-core machine."""
    if PINNED and server.proc is not None:
        os.sched_setaffinity(server.proc.pid, {CORES[0]})


@contextlib.contextmanager
def load(port: int) -> Iterator[None]:
    proc = subprocess.Popen(
        [
            *(["taskset", "-c", str(CORES[1])] if PINNED else []),
            "redis-benchmark",
            "-p",
            str(port),
            "-n",
            "100000000",
            "-P",
            "16",
            "-r",
            "100000",
            "-t",
            "get,set",
            "-q",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        yield
    finally:
        proc.kill()
        proc.wait()


def commands(r: redis.Redis) -> int:
    return int(r.info("stats")["total_commands_processed"])


def server_cpu(r: redis.Redis) -> float:
    cpu = r.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


class OmemWatch(threading.Thread):
    """Largest omem of any MONITOR client, sampled every 20 ms."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.r = redis.Redis(port=port)
        self.max_omem = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            raw = self.r.execute_command("CLIENT", "LIST")
            for c in parse_client_list(raw if isinstance(raw, bytes) else raw.encode()):
                if b"O" in c.get(b"flags", b""):
                    self.max_omem = max(self.max_omem, int(c[b"omem"]))
            time.sleep(0.02)


def ours(server: LocalServer) -> tuple[float, float, int, float]:
    inst = InstanceConfig(name="b", target=parse_target(server.url))
    lines = 0

    def sink(out: ParseResult, covered: float, now: float) -> None:
        nonlocal lines
        lines += out.lines

    sampler = MonitorSampler(inst, sink, on_s=READ_S, off_s=3600)
    r = redis.Redis(port=server.port)

    async def go() -> tuple[float, float, float]:
        task = asyncio.create_task(sampler.run())
        while not sampler.stats.connected:
            await asyncio.sleep(0.005)
        before, start, cpu = commands(r), time.monotonic(), time.process_time()
        while sampler.phase != "waiting":
            await asyncio.sleep(0.01)
        cpu = time.process_time() - cpu
        elapsed, ran = time.monotonic() - start, commands(r) - before
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return lines / elapsed, lines / max(ran, 1), lines / max(cpu, 1e-9)

    rate, kept, per_cpu = asyncio.run(go())
    return rate, kept, sampler.stats.max_omem, per_cpu


def redis_py_listen(server: LocalServer) -> tuple[float, float, int, float]:
    watch = OmemWatch(server.port)
    watch.start()
    r = redis.Redis(port=server.port)
    lines = 0
    before = commands(r)
    start, cpu = time.monotonic(), time.thread_time()
    with redis.Redis(port=server.port).monitor() as m:
        for _ in m.listen():
            lines += 1
            if lines % 1000 == 0 and time.monotonic() - start > READ_S:
                break
        cpu = time.thread_time() - cpu
        elapsed = time.monotonic() - start
        ran = commands(r) - before
    watch.done.set()
    watch.join()
    return lines / elapsed, lines / max(ran, 1), watch.max_omem, lines / max(cpu, 1e-9)


DRAIN_LINES = 400_000


def backlog(port: int) -> None:
    """Commands from redis-benchmark -P 16 while the MONITOR client does not read: the server
    buffers their lines (this bench's throw-away server has no output buffer limit)."""
    subprocess.run(
        [
            *("redis-benchmark", "-p", str(port), "-n", str(DRAIN_LINES // 2 + 20_000)),
            *("-P", "16", "-r", "100000", "-t", "get,set", "-q"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )


def drain_ours(server: LocalServer) -> float:
    inst = InstanceConfig(name="b", target=parse_target(server.url))
    sampler = MonitorSampler(inst, lambda out, covered, now: None, on_s=600, max_lines=DRAIN_LINES)

    async def go() -> float:
        reader, writer, _ = await open_redis_stream(inst, 5.0)
        try:
            writer.write(resp_command("MONITOR"))
            assert (await reader.readline()).startswith(b"+OK")
            await asyncio.to_thread(backlog, server.port)
            start = time.perf_counter()
            await sampler._read(reader, asyncio.Event())
            sampler._parse_held()  # the last chunks are held until the phase ends: count them too
            return sampler.stats.lines / (time.perf_counter() - start)
        finally:
            await close_stream(writer)

    return asyncio.run(go())


def drain_redis_py(server: LocalServer) -> float:
    with redis.Redis(port=server.port).monitor() as m:
        backlog(server.port)
        start, lines = time.perf_counter(), 0
        for _ in m.listen():
            lines += 1
            if lines >= DRAIN_LINES:
                break
        return lines / (time.perf_counter() - start)


def bench_drain() -> None:
    print(
        f"1b. MONITOR reader capacity: {DRAIN_LINES:,} lines of redis-benchmark -P 16 traffic that the"
        " server buffered while the reader waited, read as fast as the reader can (medians of 3)"
    )
    server = redis_server()
    pin_server(server)
    try:
        ours_, theirs = [], []
        for _ in range(REPEATS):
            ours_.append(drain_ours(server))
            theirs.append(drain_redis_py(server))
        a, b = statistics.median(ours_), statistics.median(theirs)
        for name, rate, runs in (("cachetop raw reader", a, ours_), ("redis-py listen()  ", b, theirs)):
            print(f"   {name} {rate:>10,.0f} lines/s  (runs: {', '.join(f'{x / 1e3:.0f}k' for x in runs)})")
        print(f"   ratio: {a / b:.2f}x  (goal >= 2x)")
    finally:
        server.cleanup()


def bench_reader() -> None:
    print("1. MONITOR reader under redis-benchmark -P 16 (medians of 3 runs of 3 s)")
    server = redis_server()
    pin_server(server)
    try:
        with load(server.port):
            a, b = [], []
            for _ in range(REPEATS):
                a.append(ours(server))
                b.append(redis_py_listen(server))
                time.sleep(0.5)  # let the server free redis-py's buffer
        for name, runs in (("cachetop raw reader", a), ("redis-py listen()  ", b)):
            med = statistics.median(x[0] for x in runs)
            kept = statistics.median(x[1] for x in runs)
            omem = max(x[2] for x in runs)
            cap = statistics.median(x[3] for x in runs)
            print(
                f"   {name}  {med:>9,.0f} lines/s  kept up with {kept:6.1%} of commands  "
                f"max omem {omem:>11,} B  capacity {cap:>10,.0f} lines per CPU-second"
            )
        rate = statistics.median(x[0] for x in a) / statistics.median(x[0] for x in b)
        cap = statistics.median(x[3] for x in a) / statistics.median(x[3] for x in b)
        print(f"   ratio, lines/s sustained: {rate:.2f}x (bounded by the server once a reader keeps up)")
        print(f"   ratio, lines per CPU-second: {cap:.2f}x  (goal >= 2x)")
    finally:
        server.cleanup()


def zipf_stream(n: int, s: float, universe: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    keys = [f"user:{i}:profile".encode() for i in range(universe)]
    weights = [1 / (i + 1) ** s for i in range(universe)]
    return rng.choices(keys, weights, k=n)


def bench_topk() -> None:
    print("2. Top-k cost per event (100k events, Zipf 1.0 over 100k keys, medians of 3)")
    stream = zipf_stream(100_000, 1.0, 100_000)
    batches = [stream[i : i + 1000] for i in range(0, len(stream), 1000)]

    def exact() -> None:
        Counter(stream)

    def plain() -> None:
        ss = SpaceSaving(1000)
        for key in stream:
            ss.add(key)

    def ingest() -> None:
        inst = InstanceConfig(name="b", target=parse_target("redis://127.0.0.1:1"))
        c = HotKeyCollector(inst, HotKeySettings(), window_s=10)
        for i, batch in enumerate(batches):
            counts: dict[bytes, list[int]] = {}
            for key in batch:
                e = counts.get(key)
                if e is None:
                    counts[key] = [1, 1, 0, 0, 0]
                else:
                    e[0] += 1
                    e[1] += 1
            c._ingest_counts(counts, 0.01, i * 0.01)
        c.keys.top(len(batches) * 0.01)

    results = {}
    for name, fn in (
        ("Counter (exact, unbounded)", exact),
        ("SpaceSaving.add, 1000", plain),
        ("collector ingest", ingest),
    ):
        times = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        results[name] = statistics.median(times) / len(stream) * 1e6
    for name, us in results.items():
        print(
            f"   {name:<28} {us:6.3f} µs/event  ({us / results['Counter (exact, unbounded)']:.1f}x Counter)"
        )


def bench_precision() -> None:
    print("3. Precision of the top 20 against exact counts (200k events over 50k keys)")
    print("   zipf   counters=1000   counters=200")
    for s in (0.8, 1.0, 1.2):
        stream = zipf_stream(200_000, s, 50_000, seed=int(s * 10))
        truth = {k for k, _ in Counter(stream).most_common(20)}
        row = []
        for capacity in (1000, 200):
            ss = SpaceSaving(capacity)
            for key in stream:
                ss.add(key)
            top = sorted(ss.entries.items(), key=lambda kv: -kv[1][0])[:20]
            row.append(len(truth & {k for k, _ in top}) / 20)
        print(f"   {s:<6} {row[0]:>13.2f}   {row[1]:>12.2f}")


def bench_cost() -> None:
    settings = HotKeySettings(big_keys=False)
    print(
        "4. What sampling costs the server, under redis-benchmark -P 16, with the sampler at its defaults"
        f" ({settings.monitor_on:g} s on / {settings.monitor_off:g} s off, a phase ends at"
        f" {settings.monitor_max_lines:,} lines)"
    )
    server = redis_server()
    pin_server(server)
    r = redis.Redis(port=server.port)
    inst = InstanceConfig(name="b", target=parse_target(server.url))
    try:
        with load(server.port):

            async def drop_while_on() -> tuple[float, float]:
                """Throughput in slices while MONITOR is on and while it is off (2 s each, 4 times)."""
                sampler = MonitorSampler(inst, lambda *_: None, on_s=2, off_s=2, max_lines=0)
                task = asyncio.create_task(sampler.run())
                on, off = [], []
                last, at, was = commands(r), time.monotonic(), sampler.stats.connected
                end = at + 16
                while at < end:
                    await asyncio.sleep(SLICE_S)
                    now_commands, now, is_on = commands(r), time.monotonic(), sampler.stats.connected
                    if is_on == was:  # the whole slice on one side
                        (on if is_on else off).append((now_commands - last) / (now - at))
                    last, at, was = now_commands, now, is_on
                await cancel_and_wait([task])
                return statistics.median(on), statistics.median(off)

            async def window(sample: bool) -> tuple[float, float, int, float]:
                collector = HotKeyCollector(inst, settings) if sample else None
                if collector:
                    await collector.start()
                before, cpu, start = commands(r), server_cpu(r), time.monotonic()
                await asyncio.sleep(10)
                ran, elapsed = commands(r) - before, time.monotonic() - start
                cpu = server_cpu(r) - cpu
                lines, on_s = 0, 0.0
                if collector:
                    ran -= collector.own_commands
                    if collector.sampler:
                        lines, on_s = collector.sampler.stats.lines, collector.sampler.stats.on_seconds
                    await collector.stop()
                return ran / elapsed, cpu / elapsed, lines, on_s

            async def run() -> tuple[tuple[float, float], list[tuple[bool, float, float, int, float]]]:
                drop = await drop_while_on()
                out = []
                for _ in range(COST_ROUNDS):
                    for sample in (False, True, True, False):  # ABBA: cancels a steady drift
                        out.append((sample, *await window(sample)))
                return drop, out

            (while_on, while_off), results = asyncio.run(run())
        drop = 1 - while_on / while_off
        lines = statistics.median(x[3] for x in results if x[0])
        on_s = statistics.median(x[4] for x in results if x[0])
        off = [x[1] for x in results if not x[0]]
        on = [x[1] for x in results if x[0]]
        busy = statistics.median(x[2] for x in results)
        # Each B pair against the A pair around it in the same round: drift cancels.
        costs = [1 - (on[2 * i] + on[2 * i + 1]) / (off[2 * i] + off[2 * i + 1]) for i in range(COST_ROUNDS)]
        print(f"   while MONITOR is on: {while_on:,.0f} commands/s, off: {while_off:,.0f} ({drop:.0%} fewer)")
        print(f"   with the defaults MONITOR is on {on_s:.2f} s per 10 s cycle ({lines:,.0f} lines, median)")
        print(f"   expected cost: {drop:.0%} x {on_s:.2f} s / 10 s = {drop * on_s / 10:.1%}  (goal < 5%)")
        saturated = "saturated" if busy >= 0.95 else "NOT saturated: the load was the limit"
        print(f"   measured, ABBA x {COST_ROUNDS} in 10 s windows (server CPU busy {busy:.0%}, {saturated}):")
        print(f"     without: {' '.join(f'{x / 1e3:.0f}k' for x in off)} commands/s")
        print(f"     with:    {' '.join(f'{x / 1e3:.0f}k' for x in on)} commands/s")
        spread = max(off) / min(off) - 1
        rounds = ", ".join(f"{c:.1%}" for c in costs)
        print(f"     cost per round {rounds}: median {statistics.median(costs):.1%}")
        print(f"     (windows with no sampler at all differ here by up to {spread:.0%})")
    finally:
        server.cleanup()


if __name__ == "__main__":
    started = time.monotonic()
    if PINNED:
        os.sched_setaffinity(0, {CORES[1]})
        print(
            f"redis-server pinned to core {CORES[0]};"
            f" the load, the readers and this process share core {CORES[1]}"
        )
    bench_reader()
    bench_drain()
    bench_topk()
    bench_precision()
    bench_cost()
    print(f"total {time.monotonic() - started:.0f}s")

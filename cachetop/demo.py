"""`cachetop demo`: local servers and a realistic workload (commands/demo.py opens the dashboard on them).

Three servers on free loopback ports, each in its own temp dir (cachetop/servers.py):
  cache-main  redis, read-through traffic with Zipf key popularity and a few hot keys
  sessions    memcached, the same pattern
  cache-small redis with a 2 MiB maxmemory (allkeys-lru), written to faster than it can hold
The workload runs in a child process (so it never slows the screen) and cycles through phases:
steady, a miss-heavy stretch, an eviction burst, and a cold start (flush, then warm-up).

Everything stops on exit, on Ctrl-C, on SIGTERM/SIGHUP and on a crash: the servers by
context managers and servers.py's atexit hook, the workload because it also watches its parent.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from cachetop.alerts.rules import Rule
from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.servers import LocalServer, memcached_server, redis_server

KEYS = 20_000
HOT_KEYS = ("hot:cart:1", "hot:session:42", "hot:feature-flags")
HOT_SHARE = 0.15  # of all reads, on top of the Zipf tail
ZIPF_S = 1.05
BATCH = 50
# Phases of one cycle, in order: (name, seconds at phase_scale 1).
# One alert to show the Alerts tab and the header badge: cache-small runs at its 2 MB maxmemory,
# so it fires within seconds. No channel: nothing is sent anywhere.
DEMO_RULES = (
    Rule(name="memory-high", metric="memory_used_pct", op=">", threshold=90.0, for_s=3.0, severity="warning"),
)
PHASES = (("steady", 20.0), ("miss-heavy", 12.0), ("eviction burst", 12.0), ("cold start", 16.0))


@dataclass
class DemoFleet:
    """The demo's servers and workload process; a context manager that always cleans up."""

    ops_per_sec: int = 1500  # per instance
    phase_scale: float = 1.0
    servers: dict[str, LocalServer] = field(default_factory=dict)
    workload: subprocess.Popen[bytes] | None = None
    # The demo's own state dir (audit log, alert state), gone with the servers: an evict tried
    # on throwaway servers does not belong in the user's real audit log.
    state_dir: Path | None = None

    def start(self) -> DemoFleet:
        try:
            self.state_dir = Path(tempfile.mkdtemp(prefix="cachetop-demo-state-"))
            self.servers["cache-main"] = redis_server(
                extra=["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]
            )
            self.servers["sessions"] = memcached_server(memory_mb=64)
            self.servers["cache-small"] = redis_server(
                extra=[
                    "--maxmemory",
                    "2mb",
                    "--maxmemory-policy",
                    "allkeys-lru",
                    "--slowlog-log-slower-than",
                    "500",
                ]
            )
            argv = [
                sys.executable,
                "-m",
                "cachetop.demo",
                "--parent",
                str(os.getpid()),
                "--rate",
                str(self.ops_per_sec),
                "--phase-scale",
                str(self.phase_scale),
                self.servers["cache-main"].url,
                self.servers["sessions"].url,
                self.servers["cache-small"].url,
            ]
            self.workload = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except BaseException:
            self.stop()
            raise
        return self

    def config(self, interval: float = 1.0, window: float = 10.0) -> Config:
        tags = {"cache-main": ("web",), "cache-small": ("web",), "sessions": ("sessions",)}
        instances = tuple(
            InstanceConfig(name=name, target=parse_target(server.url), tags=tags[name])
            for name, server in self.servers.items()
        )
        settings = Settings(interval=interval, window=window)
        if self.state_dir is not None:
            settings = replace(settings, state_dir=self.state_dir)
        return Config(path=None, settings=settings, instances=instances, sections={"rule": DEMO_RULES})

    def stop(self) -> None:
        if self.workload is not None:
            with contextlib.suppress(Exception):
                self.workload.terminate()
                try:
                    self.workload.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.workload.kill()
                    self.workload.wait(timeout=5)
            self.workload = None
        for server in self.servers.values():
            with contextlib.suppress(Exception):
                server.cleanup()
        if self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None

    def __enter__(self) -> DemoFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the workload (child process) ------------------------------------------------------------


class Zipf:
    """Draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^s from a precomputed CDF (bisect: O(log n))."""

    def __init__(self, n: int, s: float, rng: random.Random) -> None:
        weights = [1.0 / (k + 1) ** s for k in range(n)]
        self.cdf = list(itertools.accumulate(weights))
        self.total = self.cdf[-1]
        self.rng = rng

    def draw(self) -> int:
        return bisect.bisect_left(self.cdf, self.rng.random() * self.total)


def phase_at(elapsed: float, scale: float = 1.0) -> str:
    cycle = sum(seconds for _, seconds in PHASES) * scale
    t = elapsed % cycle
    for name, seconds in PHASES:
        if t < seconds * scale:
            return name
        t -= seconds * scale
    return PHASES[-1][0]


def _keys(zipf: Zipf, rng: random.Random, miss_share: float) -> list[str]:
    out = []
    for _ in range(BATCH):
        r = rng.random()
        if r < miss_share:
            out.append(f"miss:{rng.randrange(10**9)}")  # never written: a guaranteed miss
        elif r < miss_share + HOT_SHARE:
            out.append(rng.choice(HOT_KEYS))
        else:
            out.append(f"item:{zipf.draw()}")
    return out


def workload(urls: list[str], rate: int, parent: int, phase_scale: float) -> None:
    import redis
    from pymemcache.client.base import Client as Memcached

    main_url, mc_url, small_url = urls
    main = redis.Redis.from_url(main_url, client_name="demo-app")
    small = redis.Redis.from_url(small_url, client_name="demo-writer")
    mc_target = parse_target(mc_url)
    mc = Memcached((mc_target.host, mc_target.port), connect_timeout=2, timeout=2)
    rng = random.Random(7)
    zipf = Zipf(KEYS, ZIPF_S, rng)
    blobs = Zipf(1000, 0.9, rng)
    value = b"x" * 200
    big = b"y" * 4096
    start = time.monotonic()
    flushed_cycle = -1
    cycle_s = sum(seconds for _, seconds in PHASES) * phase_scale
    batches_per_s = max(1.0, rate / BATCH)
    next_at = time.monotonic()
    while os.getppid() == parent:
        elapsed = time.monotonic() - start
        phase = phase_at(elapsed, phase_scale)
        if phase == "cold start" and int(elapsed // cycle_s) != flushed_cycle:
            flushed_cycle = int(elapsed // cycle_s)
            main.flushall()
            mc.flush_all()
        miss_share = 0.6 if phase == "miss-heavy" else 0.02
        keys = _keys(zipf, rng, miss_share)
        # Read-through, key by key as an application does: GET, and SET what was missing
        # (never the guaranteed misses). Pipelined so the demo itself stays cheap.
        pipe = main.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        found = pipe.execute()
        missing = [k for k, v in zip(keys, found, strict=True) if v is None and not k.startswith("miss:")]
        if missing:
            pipe = main.pipeline(transaction=False)
            for key in missing:
                pipe.set(key, value)
            pipe.execute()
        got = mc.get_many(keys)
        mc_missing = {k: value for k in keys if k not in got and not k.startswith("miss:")}
        if mc_missing:
            mc.set_many(mc_missing)
        # cache-small: about 1000 4 KiB blobs are popular but only ~450 fit in 2 MiB, so it
        # evicts all the time, and much more during the burst's extra writes.
        writes = BATCH // 5 * (4 if phase == "eviction burst" else 1)
        pipe = small.pipeline(transaction=False)
        for _ in range(BATCH):
            key = f"blob:{blobs.draw()}"
            pipe.get(key)
        replies = pipe.execute()
        pipe = small.pipeline(transaction=False)
        for _ in range(writes):
            pipe.set(f"blob:{blobs.draw()}", big)
        for reply in replies[: BATCH // 2]:
            if reply is None:
                pipe.set(f"blob:{blobs.draw()}", big)
        pipe.execute()
        next_at += 1.0 / batches_per_s
        time.sleep(max(0.0, next_at - time.monotonic()))
        if next_at < time.monotonic() - 1.0:
            next_at = time.monotonic()  # fell behind (a slow machine): don't try to catch up


def _workload_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m cachetop.demo")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--rate", type=int, default=1500)
    parser.add_argument("--phase-scale", type=float, default=1.0)
    parser.add_argument("urls", nargs=3)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; Ctrl-C reaches both
    # A server going away (the demo is ending) ends the workload quietly.
    with contextlib.suppress(Exception):
        workload(args.urls, args.rate, args.parent, args.phase_scale)
    return 0


if __name__ == "__main__":
    sys.exit(_workload_main(sys.argv[1:]))

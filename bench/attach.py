"""One poller, many viewers: what attached viewers cost the daemon, how fast a poll reaches them,
and what the caches see (issue 18).

A real `cachetop daemon` watches an idle redis-server and an idle memcached at a 1 s interval with
/api/v1 on. Phases of PHASE_S seconds with 0, 1, 10 and 50 viewers attached, then 0 again (the
reference is the mean of the two 0-viewer phases, so drift on a shared box shows).

A viewer here is what an attached dashboard's source does on the wire: one
`GET /api/v1/stream` with the token, reading every server-sent event and parsing its JSON
snapshot (the dashboard's drawing happens in its own process and costs the daemon nothing; the
tabs of `cachetop serve` are such dashboards). The first viewer of each phase is the dashboard's
own source, a real AttachSource (sources/attach.py), timed when it hands the Snapshot to its
subscribers (where the dashboard draws it); the others are plain stream readers. All run in this
process, on one event loop.

Measured, per phase:
  * the daemon's CPU (psutil, user + system of its process) as a share of one core, and the share
    the viewers add over the 0-viewer reference. Goal: 50 viewers add < 10% of a core;
  * the latency from the snapshot's time (the Monitor stamps it when it publishes the poll's
    result) to each viewer receiving it: per poll, the slowest viewer. Goal: every viewer within
    200 ms;
  * the caches' load, raw (net of nothing): Redis total_commands_processed per second and
    connected_clients from INFO, memcached curr_connections and total_connections from `stats`.
    Goal: exactly the 0-viewer numbers (this bench's own INFO/stats reads are the same in every
    phase, 2 per phase).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

from cachetop.model import Snapshot
from cachetop.servers import free_port, memcached_server, redis_server, wait_for_port
from cachetop.sources.attach import AttachSource

PHASES = (0, 1, 10, 50, 0)
PHASE_S = 20.0
SETTLE_S = 2.0  # after the viewers connect: their first (backlog) event is not a poll
CPU_GOAL = 0.10
LATENCY_GOAL_S = 0.200


@dataclass
class Phase:
    viewers: int
    cpu: float = 0.0  # share of one core
    latencies: dict[int, list[float]] = field(default_factory=dict)  # seq -> per-viewer latency
    redis_cmds_per_s: float = 0.0
    redis_calls: dict[str, int] = field(default_factory=dict)  # per command, in the phase
    redis_clients: int = 0
    mc_conns: int = 0
    mc_new_conns: int = 0
    events: int = 0
    source_latencies: list[float] = field(default_factory=list)  # the AttachSource's, per poll


def redis_info(port: int) -> dict[str, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"INFO all\r\n")  # with commandstats
        data = b""
        while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2:
            data += sock.recv(65536)
        header, _, body = data.partition(b"\r\n")
        size = int(header[1:])
        while len(body) < size + 2:
            body += sock.recv(65536)
    pairs = (line.split(":", 1) for line in body.decode().splitlines() if ":" in line)
    return {key: value for key, value in pairs}


def memcached_stats(port: int) -> dict[str, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            data += sock.recv(65536)
    return {
        parts[1]: parts[2]
        for parts in (line.split() for line in data.decode().splitlines())
        if len(parts) == 3
    }


def command_calls(after: dict[str, str], before: dict[str, str]) -> dict[str, int]:
    def calls(info: dict[str, str]) -> dict[str, int]:
        return {
            key[len("cmdstat_") :]: int(value.split(",")[0].split("=")[1])
            for key, value in info.items()
            if key.startswith("cmdstat_")
        }

    a, b = calls(after), calls(before)
    return {name: a[name] - b.get(name, 0) for name in a if a[name] != b.get(name, 0)}


async def viewer(url: str, token: str, phase: Phase, stop: asyncio.Event, ready: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=30)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{url}/api/v1/stream", headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        ready.set()
        reader = asyncio.ensure_future(_read_events(response, phase))
        await stop.wait()
        reader.cancel()


async def _read_events(response: aiohttp.ClientResponse, phase: Phase) -> None:
    async for raw in response.content:
        if not raw.startswith(b"data:"):
            continue
        received = time.time()
        doc = json.loads(raw[5:])
        phase.events += 1
        phase.latencies.setdefault(doc["seq"], []).append(received - doc["time"])


async def run_phase(
    n: int, url: str, token: str, daemon: psutil.Process, redis_port: int, mc_port: int
) -> Phase:
    phase = Phase(n)
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in range(n)]
    tasks = [asyncio.create_task(viewer(url, token, phase, stop, ready)) for ready in readies[1:]]
    source = None
    if n:
        source = AttachSource(url, token)

        def on_snapshot(snap: Snapshot, source: AttachSource = source) -> None:
            latency = time.time() - snap.time
            phase.source_latencies.append(latency)
            phase.latencies.setdefault(source.seq, []).append(latency)

        source.subscribe(on_snapshot)
        await source.start()
        await asyncio.wait_for(source.connected.wait(), 30)
        readies[0].set()
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
    await asyncio.sleep(SETTLE_S)
    phase.latencies.clear()
    phase.source_latencies.clear()
    phase.events = 0
    info0, stats0 = redis_info(redis_port), memcached_stats(mc_port)
    cpu0, t0 = daemon.cpu_times(), time.monotonic()
    await asyncio.sleep(PHASE_S)
    cpu1, t1 = daemon.cpu_times(), time.monotonic()
    info1, stats1 = redis_info(redis_port), memcached_stats(mc_port)
    stop.set()
    if source is not None:
        await source.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    wall = t1 - t0
    phase.cpu = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / wall
    cmds = int(info1["total_commands_processed"]) - int(info0["total_commands_processed"])
    phase.redis_cmds_per_s = cmds / wall
    phase.redis_calls = command_calls(info1, info0)
    phase.redis_clients = int(info1["connected_clients"]) - 1  # less this bench's INFO connection
    phase.mc_conns = int(stats1["curr_connections"]) - 1  # less this bench's stats connection
    phase.mc_new_conns = int(stats1["total_connections"]) - int(stats0["total_connections"]) - 1
    return phase


def start_daemon(tmp: Path, redis_url: str, mc_url: str) -> tuple[subprocess.Popen[bytes], str, str]:
    token = secrets.token_hex(16)
    port = free_port()
    config = tmp / "daemon.toml"
    config.write_text(
        "\n".join(
            [
                "[settings]",
                'interval = "1s"',
                f'state_dir = "{tmp / "state"}"',
                f'api_token = "{token}"',
                "",
                "[alerts]",
                "instance_down = false",
                "",
                "[[instance]]",
                'name = "redis"',
                f'url = "{redis_url}"',
                "",
                "[[instance]]",
                'name = "memcached"',
                f'url = "{mc_url}"',
            ]
        )
        + "\n"
    )
    config.chmod(0o600)
    argv = [sys.executable, "-m", "cachetop", "daemon", "-c", str(config), "--metrics-port", str(port)]
    argv += ["--metrics-addr", "127.0.0.1"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(tmp / "daemon.err", "wb"))  # noqa: SIM115
    wait_for_port(port, 20)
    return proc, f"http://127.0.0.1:{port}", token


async def wait_first_snapshot(url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            async with session.get(f"{url}/api/v1/snapshot", headers=headers) as response:
                if response.status == 200:
                    doc = await response.json()
                    if all(i.get("status") == "up" for i in doc["instances"]):
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError("the daemon served no snapshot with both instances up in 20 s")


async def bench(url: str, token: str, daemon: psutil.Process, redis_port: int, mc_port: int) -> list[Phase]:
    await wait_first_snapshot(url, token)
    await asyncio.sleep(3)  # past the first polls' connection set-up
    return [await run_phase(n, url, token, daemon, redis_port, mc_port) for n in PHASES]


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="cachetop-bench-attach-"))
    redis, mc = redis_server(), memcached_server()
    proc, url, token = start_daemon(tmp, redis.url, mc.url)
    try:
        phases = asyncio.run(bench(url, token, psutil.Process(proc.pid), redis.port, mc.port))
    finally:
        proc.terminate()
        proc.wait(10)
        redis.cleanup()
        mc.cleanup()
    return report(phases)


def report(phases: list[Phase]) -> int:
    alone = [p for p in phases if p.viewers == 0]
    ref_cpu = statistics.mean(p.cpu for p in alone)
    ref_cmds = statistics.mean(p.redis_cmds_per_s for p in alone)
    print(
        f"attach: a daemon at 1 s on an idle redis + memcached, {os.cpu_count()} cores, "
        f"{PHASE_S:g} s per phase"
    )
    print(f"  load average at the end (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"  reference (0 viewers, mean of {len(alone)}): daemon {ref_cpu:.1%} of a core, "
        f"redis {ref_cmds:.2f} cmd/s"
    )
    print(
        "  viewers  daemon CPU   added  events  slowest viewer per poll (ms)  late   dashboard source (ms)"
        "  redis cmd/s  ratio  conns redis/mc  mc new conns"
    )
    print("                                      median /   p95 /   max                 median /    max")
    ok = True
    for p in phases:
        worst = sorted(max(lat) for lat in p.latencies.values() if len(lat) == p.viewers)
        src = p.source_latencies
        late = sum(1 for w in worst if w > LATENCY_GOAL_S)
        lat = "-"
        if worst:
            p95 = worst[min(len(worst) - 1, round(0.95 * (len(worst) - 1)))]
            lat = f"{statistics.median(worst) * 1000:6.1f} / {p95 * 1000:5.1f} / {worst[-1] * 1000:5.1f}"
        source = f"{statistics.median(src) * 1000:6.1f} / {max(src) * 1000:6.1f}" if src else "-"
        print(
            f"  {p.viewers:7d}  {p.cpu:9.1%}  {p.cpu - ref_cpu:+6.1%}  {p.events + len(src):6d}  {lat:>28}  "
            f"{f'{late}/{len(worst)}' if worst else '-':>5}  {source:>22}  {p.redis_cmds_per_s:11.2f}  "
            f"{p.redis_cmds_per_s / ref_cmds:5.3f}  {p.redis_clients:>8d}/{p.mc_conns:<6d}  "
            f"{p.mc_new_conns:12d}"
        )
        if p.viewers and (not worst or late):
            ok = False
    print("  redis commands per phase (each phase's own INFO included):")
    for p in phases:
        calls = ", ".join(f"{name} {n}" for name, n in sorted(p.redis_calls.items()))
        print(f"    {p.viewers:3d} viewers: {calls}")
    top = max(phases, key=lambda p: p.viewers)
    conns = {(p.redis_clients, p.mc_conns) for p in phases}
    print(f"  goal: {top.viewers} viewers add < {CPU_GOAL:.0%} of a core: {top.cpu - ref_cpu:+.1%}", end=" ")
    print("ok" if top.cpu - ref_cpu < CPU_GOAL else "OVER GOAL")
    print(
        f"  goal: every viewer within {LATENCY_GOAL_S * 1000:.0f} ms of every poll ('late' counts the polls "
        f"that were not): "
        f"{'ok' if ok else 'OVER GOAL'}"
    )
    same = len(conns) == 1 and all(p.mc_new_conns == 0 for p in phases)
    print(
        f"  goal: the caches see the daemon's connections only: "
        f"{'ok' if same else 'DIFFERENT'} {sorted(conns)}"
    )
    ok = ok and same and top.cpu - ref_cpu < CPU_GOAL
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""On time, always: a snapshot every window, whatever a silent instance does.

An instance whose poll is still in flight keeps its last values, marked stale, until its timeout
declares it down; the others are never held up by it.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cachetop.engine.monitor import Monitor
from cachetop.model import Snapshot, Status
from cachetop.servers import LocalServer
from tests.delay_proxy import DelayProxy
from tests.monitoring import fast_config


@contextmanager
def silent_peer() -> Iterator[int]:
    """A loopback server that accepts and reads everything, and never replies: the worst kind
    of slow (a wedged process, a half-dead load balancer). Yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def read(conn: socket.socket) -> None:
        conn.settimeout(0.1)
        while not stop.is_set():
            try:
                if not conn.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conns.append(conn)
            threading.Thread(target=read, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()
        for conn in conns:
            conn.close()


def test_snapshot_prints_every_window_while_one_instance_never_answers(
    redis: LocalServer, memcached: LocalServer
) -> None:
    exe = shutil.which("cachetop", path=str(Path(sys.executable).parent)) or "cachetop"
    with silent_peer() as port:
        silent = f"redis://127.0.0.1:{port}"
        args = [exe, "snapshot", "--window", "1", "--count", "10", "--json", redis.url, memcached.url, silent]
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
        )
        arrivals: list[float] = []
        docs: list[dict] = []  # type: ignore[type-arg]
        assert proc.stdout is not None
        try:
            for line in proc.stdout:  # line by line, stamped as each arrives
                arrivals.append(time.monotonic())
                docs.append(json.loads(line))
            code = proc.wait(timeout=30)
        finally:
            proc.kill()
            proc.wait()
    assert len(docs) == 10, proc.stderr.read() if proc.stderr else ""
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(arrivals)]
    assert all(0.8 <= gap <= 1.2 for gap in gaps), gaps  # every second, not every 2 s (the timeout)
    assert code == 1  # one instance did not answer
    for doc in docs:
        healthy, cache, dark = doc["instances"]
        assert (healthy["name"], healthy["status"], healthy["error"]) == (redis.address, "up", None)
        assert (cache["name"], cache["status"], cache["error"]) == (memcached.address, "up", None)
        assert healthy["metrics"]["ops_per_sec"] == 0.0  # idle, and our own polls are not counted
        assert cache["metrics"]["ops_per_sec"] == 0.0
        assert "stale" not in healthy and "stale" not in cache
        assert dark["name"] == f"127.0.0.1:{port}"
    # The first snapshot comes one window in, while its first poll is still in flight: never
    # answered, so nothing to show yet. From the 2 s timeout on, it is down, and stays down.
    statuses = [doc["instances"][2]["status"] for doc in docs]
    assert statuses == ["unknown"] + ["down"] * 9, statuses
    assert {doc["instances"][2]["error"] for doc in docs[1:]} == {"timed out after 2s"}


async def test_an_instance_that_stops_answering_keeps_its_values_marked_stale_until_down(
    redis: LocalServer,
) -> None:
    interval, timeout = 0.4, 2.0
    with DelayProxy(redis.port, 0.0) as proxy:
        config = fast_config(f"redis://127.0.0.1:{proxy.port}", redis.url, interval=interval, timeout=timeout)
        published: list[tuple[float, Snapshot]] = []
        async with Monitor(config) as mon:
            mon.subscribe(lambda snap: published.append((time.monotonic(), snap)))
            up = await mon.wait_snapshot(lambda s: all(i.status == Status.UP for i in s.instances), 10)
            await mon.wait_snapshot(timeout=5)  # one more, so the rates are there
            proxy.delay_s = 60.0  # from now on the proxied instance answers nothing
            frozen_at = time.monotonic()
            stale = await mon.wait_snapshot(lambda s: s.instances[0].stale, 5)
            stale_after = time.monotonic() - frozen_at
            down = await mon.wait_snapshot(lambda s: s.instances[0].status == Status.DOWN, 5)
            proxy.delay_s = 0.0
    # Late by half an interval, whether a poll or a probe is what hangs: long before the timeout.
    assert stale_after < timeout, stale_after
    slow, healthy = stale.instances
    assert slow.status == Status.UP and slow.error is None
    assert slow.last_poll is not None and slow.last_poll < stale.time - interval / 2
    # Its last values, as they were when it last answered: not blanks.
    fresh = [snap.instances[0] for _, snap in published if snap.instances[0].last_poll == slow.last_poll]
    last = next(i for i in fresh if not i.stale)
    assert up.instances[0].status == Status.UP
    for name in ("memory_used_bytes", "connections", "ops_per_sec", "hit_ratio"):
        assert slow.metrics[name] == last.metrics[name], name
    assert slow.metrics["memory_used_bytes"] is not None
    assert slow.counters == last.counters
    assert not healthy.stale and healthy.status == Status.UP
    assert down.instances[0].error == f"timed out after {timeout:g}s"
    assert not down.instances[0].stale  # down, not stale: the timeout decided
    assert down.instances[1].status == Status.UP
    # Published on time throughout: no gap near the 2 s timeout.
    during = [t for t, snap in published if t >= frozen_at - interval and snap.time <= down.time]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert gaps and max(gaps) < interval + 0.2, gaps

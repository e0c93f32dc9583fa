"""An evict an attached dashboard asks the daemon for is cachetop's own traffic (actions/own_report.py).

A real daemon watches an otherwise idle Redis; named keys and an idle pattern are evicted through
/api/v1/actions/evict (dry run, then confirm). Every snapshot the daemon serves from before the
first request until its window has moved past the last one reads exactly 0.0 ops/s: the
handshakes, ROLE, INFO, SCAN, MEMORY USAGE, OBJECT IDLETIME and UNLINK it sent are all taken out.
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

import redis as redis_py

from cachetop.servers import LocalServer
from tests.api_daemon import ApiDaemon, start_api_daemon
from tests.conftest import wait_until

NAMED = 400  # evicted by name, in one request
IDLE = 300  # evicted by pattern, idle over 1 s (one OBJECT IDLETIME each, dry run and evict)
EVICT = "/api/v1/actions/evict"


class SnapshotLog:
    """Every snapshot the daemon's API serves while it runs: seq -> ops_per_sec of the instance."""

    def __init__(self, daemon: ApiDaemon) -> None:
        self.daemon = daemon
        self.ops: dict[int, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            status, doc = self.daemon.request("/api/v1/snapshot", timeout=5)
            if status == 200 and doc["instances"][0]["status"] == "up":
                self.ops.setdefault(doc["seq"], doc["instances"][0]["metrics"].get("ops_per_sec"))
            self._stop.wait(0.02)  # a snapshot is served for an interval (200 ms): none is missed

    def __enter__(self) -> SnapshotLog:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def wait_past(self, seq: int, deadline_s: float = 30.0) -> None:
        end = time.monotonic() + deadline_s
        while max(self.ops, default=-1) < seq:
            assert time.monotonic() < end, f"no snapshot {seq} in {deadline_s}s: {self.ops}"
            self._stop.wait(0.05)


def _evict(daemon: ApiDaemon, body: dict[str, Any]) -> dict[str, Any]:
    assert daemon.action_token
    act = {"X-Cachetop-Action-Token": daemon.action_token}
    status, plan = daemon.request(EVICT, method="POST", body={**body, "dry_run": True}, headers=act)
    assert status == 200, plan
    status, done = daemon.request(
        EVICT, method="POST", body={"plan": plan["plan"], "confirm": True}, headers=act
    )
    assert status == 200, done
    return {"matched": plan["matched"], **done}


def test_an_api_evict_leaves_an_idle_servers_ops_per_sec_at_zero(tmp_path: Path, redis: LocalServer) -> None:
    client = redis_py.Redis(port=redis.port)
    pipe = client.pipeline(transaction=False)
    for i in range(NAMED):
        pipe.set(f"named:{i}", "v")
    for i in range(IDLE):
        pipe.set(f"sess:{i}", "v")
    pipe.set("keep", "v")
    pipe.execute()
    # The idle evict below takes keys idle over 1 s: wait until they are (by the server's own idle
    # time, before the daemon starts, so these reads are outside everything it measures). A daemon
    # that started fast evicted 0 of them in a clean CI run.
    wait_until(lambda: client.object("idletime", "sess:0") >= 2, deadline_s=10, what="sess:* idle 2 s")
    client.close()  # from here on the server is idle but for the daemon
    window_polls = 2.0 / 0.2
    daemon = start_api_daemon(tmp_path, {"r": redis.url}, interval="200ms", window="2s")
    try:
        # The load above has left the window: the idle server reads 0.0 before anything is asked.
        daemon.wait_snapshot(what=lambda d: d["instances"][0]["metrics"].get("ops_per_sec") == 0.0)
        with SnapshotLog(daemon) as log:
            log.wait_past(0)
            first = max(log.ops)
            named = _evict(daemon, {"instance": "r", "keys": [base64.b64encode(f"named:{i}".encode()).decode()
                                                          for i in range(NAMED)]})  # fmt: skip
            idle = _evict(daemon, {"instance": "r", "pattern": "sess:*", "idle_over_s": 1})
            last = max(log.ops)
            log.wait_past(last + int(window_polls) + 2)  # every window the evicts fell in
        assert (named["matched"], named["evicted"], named["complete"]) == (NAMED, NAMED, True)
        assert (idle["matched"], idle["evicted"], idle["complete"]) == (IDLE, IDLE, True)
        seen = {seq: ops for seq, ops in log.ops.items() if seq >= first}
        assert len(seen) > window_polls, seen
        assert set(seen.values()) == {0.0}, {seq: ops for seq, ops in seen.items() if ops != 0.0}
    finally:
        daemon.stop()
    client = redis_py.Redis(port=redis.port)
    assert client.keys() == [b"keep"]  # exactly the N keys are gone
    client.close()

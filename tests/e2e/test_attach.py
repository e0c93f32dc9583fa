"""Dashboards attached to a daemon (issue 18), as people run them: real TUIs in tmux, a real daemon
(tests/api_daemon.py), a real Redis and memcached under a workload whose hit ratio is known.

* three attached dashboards open no connection to the caches, and show the daemon's hit ratio;
* the daemon killed: each shows the banner; restarted: data again within 2 intervals;
* a wrong or missing token: 401, said on screen, no data;
* an evict from an attached dashboard with the action token removes exactly the dry run's key
  and is in the daemon's audit log; without the token it is refused."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.servers import LocalServer
from tests.api_daemon import CACHETOP, SOURCE, ApiDaemon, start_api_daemon
from tests.conftest import wait_until
from tests.integration.test_evict_idle import kept_in_use
from tests.tmux import kill, screen, send_keys, start

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


@pytest.fixture
def tmux() -> Iterator[Callable[[str], str]]:
    """Starts a dashboard command in a new tmux session (120x30); returns the session name."""
    names: list[str] = []

    def start_dashboard(command: str) -> str:
        name = f"cachetop-attach-{uuid.uuid4().hex[:8]}"
        names.append(name)
        start(name, f"env PYTHONPATH={SOURCE} TERM=xterm-256color {command}; sleep 600", (120, 30))
        return name

    yield start_dashboard
    for name in names:
        kill(name)


def attach_command(daemon: ApiDaemon, tmp_path: Path, *, token: str | None, action: bool = False) -> str:
    parts = [str(CACHETOP), "--attach", daemon.url]
    if token is not None:
        path = tmp_path / f"token-{uuid.uuid4().hex[:6]}"
        path.write_text(token + "\n")
        parts += ["--token-file", str(path)]
    if action:
        path = tmp_path / f"action-{uuid.uuid4().hex[:6]}"
        path.write_text(str(daemon.action_token) + "\n")
        parts += ["--action-token-file", str(path)]
    return " ".join(parts) + f" 2>>{tmp_path / 'dashboards.err'}"


class Workload:
    """Three hits and one miss per round, each round atomic (a MULTI on Redis, one multi-get on
    memcached), so every window's hit ratio is exactly 75.0%."""

    def __init__(self, redis: LocalServer, memcached: LocalServer) -> None:
        self.stop = threading.Event()
        self.client = redis_py.Redis(port=redis.port)
        for n in range(3):
            self.client.set(f"k{n}", "v")
        self.mc = socket.create_connection(("127.0.0.1", memcached.port))
        for n in range(3):
            self.mc.sendall(f"set k{n} 0 0 1\r\nv\r\n".encode())
            assert self.mc.recv(64) == b"STORED\r\n"
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            pipe = self.client.pipeline(transaction=True)
            for key in ("k0", "k1", "k2", "missing"):
                pipe.get(key)
            pipe.execute()
            self.mc.sendall(b"get k0 k1 k2 missing\r\n")
            reply = b""
            while not reply.endswith(b"END\r\n"):
                reply += self.mc.recv(4096)
            self.stop.wait(0.01)

    def __enter__(self) -> Workload:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.client.close()
        self.mc.close()


def cachetop_clients(server: LocalServer) -> list[str]:
    client = redis_py.Redis(port=server.port)
    try:
        # A name is `cachetop-ROLE:PROCESS:COUNT` (the count of commands sent moves): ROLE:PROCESS.
        names = (c["name"] for c in client.client_list() if c["name"].startswith("cachetop"))
        return sorted(":".join(name.split(":")[:2]) for name in names)
    finally:
        client.close()


def memcached_connections(server: LocalServer) -> int:
    with socket.create_connection(("127.0.0.1", server.port)) as conn:
        conn.sendall(b"stats\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            reply += conn.recv(65536)
    stats = dict(line.split(" ")[1:3] for line in reply.decode().splitlines() if line.startswith("STAT "))
    return int(stats["curr_connections"])


def toasts(text: str) -> str:
    """The toasts' text (right of their `▌` border), line breaks folded: a wrapped message reads whole."""
    parts = [line.rsplit("▌", 1)[1] for line in text.splitlines() if "▌" in line]
    return " ".join(" ".join(parts).split())


def rows_show(text: str, *pairs: tuple[str, str]) -> bool:
    """Each (instance, value) is on that instance's overview row."""
    lines = text.splitlines()
    return all(any(line.split()[:1] == [name] and value in line for line in lines) for name, value in pairs)


def test_three_attached_dashboards_add_no_connection_show_the_daemons_hit_ratio_and_survive_a_restart(
    tmp_path: Path, tmux: Callable[[str], str], redis: LocalServer, memcached: LocalServer
) -> None:
    with Workload(redis, memcached):
        daemon = start_api_daemon(tmp_path, {"redis": redis.url, "mc": memcached.url}, interval="1s")
        try:
            doc = daemon.wait_snapshot(
                what=lambda d: [i["metrics"]["hit_ratio"] for i in d["instances"]] == [75.0, 75.0]
            )
            alone_redis, alone_mc = cachetop_clients(redis), memcached_connections(memcached)
            assert alone_redis  # the daemon's own poll connection, named
            sessions = [tmux(attach_command(daemon, tmp_path, token=daemon.token)) for _ in range(3)]
            for session in sessions:
                wait_until(lambda s=session: rows_show(screen(s), ("redis", "75.0%"), ("mc", "75.0%")),
                           deadline_s=30, what="the daemon's hit ratio on every dashboard")  # fmt: skip
            # The daemon's /api says the same, and the caches see no one new.
            # (A memcached multi-get is not atomic against `stats`: a window may rarely read 74.9.)
            doc = daemon.wait_snapshot(
                deadline_s=10,
                what=lambda d: [i["metrics"]["hit_ratio"] for i in d["instances"]] == [75.0, 75.0],
            )
            assert [i["name"] for i in doc["instances"]] == ["redis", "mc"]
            assert cachetop_clients(redis) == alone_redis
            assert memcached_connections(memcached) == alone_mc
            for session in sessions:
                assert "read-only" in screen(session) or "75.0%" in screen(session)

            daemon.kill()
            for session in sessions:
                wait_until(lambda s=session: "DAEMON LOST · last data" in screen(s), deadline_s=10,
                           what="the lost-daemon banner")  # fmt: skip
            assert "connection refused" in screen(sessions[0]) or "closed" in screen(sessions[0])
            daemon.start(wait=False)
            daemon.wait_snapshot(deadline_s=30)  # the restarted daemon has published
            back = time.monotonic()
            pending = set(sessions)
            while pending and time.monotonic() - back < 10:
                for session in list(pending):
                    text = screen(session)
                    if "DAEMON LOST" not in text and "2/2 up" in text:
                        pending.discard(session)
                time.sleep(0.05)
            elapsed = time.monotonic() - back
            print(f"redis cachetop clients {alone_redis}, memcached curr_connections {alone_mc}; "
                  f"dashboards back {elapsed:.2f}s after the daemon's first snapshot")  # fmt: skip
            assert not pending and elapsed <= 2 * 1.0, f"data again after {elapsed:.2f}s"
        finally:
            daemon.stop()


def test_a_wrong_or_missing_token_is_refused_on_screen_and_shows_no_data(
    tmp_path: Path, tmux: Callable[[str], str], redis: LocalServer
) -> None:
    daemon = start_api_daemon(tmp_path, {"cache-secret-name": redis.url})
    try:
        wrong = tmux(attach_command(daemon, tmp_path, token="wrong-token-0123456789abcdef"))
        missing = tmux(attach_command(daemon, tmp_path, token=None))
        wait_until(lambda: "NOT CONNECTED" in screen(wrong) and "401" in screen(wrong), deadline_s=20,
                   what="the refusal on screen")  # fmt: skip
        wait_until(lambda: "NOT CONNECTED" in screen(missing) and "401" in screen(missing), deadline_s=20,
                   what="the refusal on screen")  # fmt: skip
        assert "wrong token" in screen(wrong) and "no token" in screen(missing)
        # both have asked at least once: no data came back, so no instance shows
        for session in (wrong, missing):
            assert "cache-secret-name" not in screen(session)
    finally:
        daemon.stop()
    refused = [line for line in daemon.stderr.read_text().splitlines() if "refused a request" in line]
    assert refused and "wrong-token" not in daemon.stderr.read_text()


def _open_hot_keys(session: str, key: str) -> None:
    wait_until(lambda: rows_show(screen(session), ("redis", "up")), deadline_s=30, what="the overview")
    send_keys(session, "End", "Enter")
    wait_until(lambda: "Hot keys" in screen(session), deadline_s=20, what="the detail view")
    send_keys(session, *["Right"] * 5)
    wait_until(lambda: key in screen(session), deadline_s=40, what="the hot key from the daemon")
    if "e Evict key" not in screen(session):
        send_keys(session, "Tab")
    wait_until(lambda: "e Evict key" in screen(session), deadline_s=10, what="e offered in the footer")


def test_evict_from_an_attached_dashboard_goes_through_the_daemon_only_with_the_action_token(
    tmp_path: Path, tmux: Callable[[str], str], redis: LocalServer
) -> None:
    client = redis_py.Redis(port=redis.port)
    client.set("hot:1", "v")
    client.set("hot:10", "v")
    client.set("cold:1", "v")
    app = redis_py.Redis(port=redis.port)
    with kept_in_use(lambda: app.get("hot:1"), every_s=0.005):  # the application reads hot:1
        daemon = start_api_daemon(tmp_path, {"redis": redis.url}, extra_toml="\n[hotkeys]\nk = 20\n")
        audit = tmp_path / "daemon-state" / "audit.jsonl"
        try:
            viewer = tmux(attach_command(daemon, tmp_path, token=daemon.token))
            _open_hot_keys(viewer, "hot:1")
            assert "⇄ read-only" in screen(viewer).splitlines()[0]  # the header says it from the start
            notice = "attached without an action token"
            wait_until(
                lambda: notice not in toasts(screen(viewer)), deadline_s=20, what="the startup notice gone"
            )
            send_keys(viewer, "e")
            refusal = "read-only: attached without an action token"
            wait_until(lambda: refusal in toasts(screen(viewer)), deadline_s=10, what="the refusal")
            assert client.exists("hot:1") == 1 and not audit.exists()

            operator = tmux(attach_command(daemon, tmp_path, token=daemon.token, action=True))
            _open_hot_keys(operator, "hot:1")
            send_keys(operator, "e")
            wait_until(lambda: "would evict 1 key from redis, e.g. hot:1" in screen(operator), deadline_s=15,
                       what="the daemon's dry run")  # fmt: skip
            send_keys(operator, "Tab", "Enter")
            done = "evicted 1 of 1 matched keys from redis"
            wait_until(lambda: done in toasts(screen(operator)), deadline_s=15, what="the daemon's result")
            assert sorted(client.keys()) == [b"cold:1", b"hot:10"]
        finally:
            daemon.stop()
    app.close()
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(e["source"], e["outcome"], e.get("evicted")) for e in entries] == [
        ("api", "intent", None),
        ("api", "done", 1),
    ]
    assert entries[1]["what"] == {"keys": ["hot:1"], "key_count": 1}

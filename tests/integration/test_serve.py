"""`cachetop serve`'s web side without a browser: sign-in, cookie, Origin, tab limit, and the CLI's
refusals. Each tab is a real process (a stand-in that waits on stdin where the dashboard would run:
the Chromium test in tests/e2e runs the real attached dashboard)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from cachetop.cli import main
from cachetop.servers import free_port
from cachetop.tui.serve_web import COOKIE, DashboardServer
from tests.conftest import until

TOKEN = "serve-test-token-5f2c"
# textual-serve talks to the tab over stdin in packets (type byte, 4-byte length, payload) and
# ends it with a "quit" meta packet, as it would end a dashboard.
TAB_SCRIPT = """
import json, sys
sys.stdout.write("__GANGLION__\\n")  # what a Textual app says first under textual-serve
sys.stdout.flush()
stdin = sys.stdin.buffer
while head := stdin.read(5):
    payload = stdin.read(int.from_bytes(head[1:], "big"))
    if head[:1] == b"M" and json.loads(payload).get("type") == "quit":
        break
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[DashboardServer, str]]:
    (tmp_path / "tab.py").write_text(TAB_SCRIPT)
    tab = shlex.join([sys.executable, str(tmp_path / "tab.py")])
    dashboards = DashboardServer(tab, token=TOKEN, host="127.0.0.1", port=0, max_tabs=1)
    runner, urls = await dashboards.start()
    try:
        yield dashboards, urls[0]
    finally:
        await dashboards.close_tabs()
        await runner.cleanup()


async def sign_in(session: aiohttp.ClientSession, url: str, token: str) -> int:
    async with session.post(url + "login", data={"token": token}, allow_redirects=False) as response:
        return response.status


async def test_pages_need_the_token_and_the_cookie_is_not_the_token(
    server: tuple[DashboardServer, str],
) -> None:
    _, url = server
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(url) as page:
            assert page.status == 401
            body = await page.text()
            assert 'name="token"' in body and "data-session-websocket-url" not in body
        async with session.get(url + "static/js/textual.js") as static:
            assert static.status == 200  # the library's own files: nothing of ours
        async with session.get(url + "ws") as ws:
            assert ws.status == 401
        assert await sign_in(session, url, "wrong-token") == 401
        assert not [c for c in session.cookie_jar if c.key == COOKIE]

        assert await sign_in(session, url, TOKEN) == 303
        cookie = next(c for c in session.cookie_jar if c.key == COOKIE)
        assert cookie.value != TOKEN and TOKEN not in cookie.value
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        async with session.get(url) as page:
            assert page.status == 200
            body = await page.text()
        assert page.headers["X-Frame-Options"] == "DENY"
        # The terminal page: its socket is this server as the browser reached it; no command, no
        # token, no external font.
        host = url.split("://", 1)[1].rstrip("/")
        assert f'data-session-websocket-url="ws://{host}/ws"' in body
        assert TOKEN not in body and sys.executable not in body and "googleapis" not in body


async def test_a_tab_from_another_site_is_refused_and_tabs_are_limited(
    server: tuple[DashboardServer, str],
) -> None:
    dashboards, url = server
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        assert await sign_in(session, url, TOKEN) == 303
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url + "ws", origin="http://evil.example")
        assert refused.value.status == 403
        host = url.split("://", 1)[1].rstrip("/")
        first = await session.ws_connect(url + "ws?width=80&height=24", origin=f"http://{host}")
        await until(lambda: dashboards.tabs == 1, 5, "the first tab")
        with pytest.raises(aiohttp.WSServerHandshakeError) as full:
            await session.ws_connect(url + "ws", origin=f"http://{host}")
        assert full.value.status == 503
        await first.close()
        await until(lambda: dashboards.tabs == 0, 10, "the tab to end")
        second = await session.ws_connect(url + "ws", origin=f"http://{host}")
        await until(lambda: dashboards.tabs == 1, 5, "a tab again")
        await second.close()


def test_serve_refuses_without_a_token_or_with_a_secret_in_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CACHETOP_TOKEN", raising=False)
    monkeypatch.delenv("CACHETOP_ATTACH", raising=False)
    monkeypatch.delenv("CACHETOP_ACTION_TOKEN", raising=False)

    def serve(*args: str) -> tuple[int, str]:
        status = main(["serve", *args])
        return status, capsys.readouterr().err

    status, err = serve("--attach", "http://127.0.0.1:9")
    assert status == 2 and "set $CACHETOP_TOKEN or pass --token-file FILE" in err
    empty = tmp_path / "token"
    empty.write_text("\n")
    status, err = serve("--attach", "http://127.0.0.1:9", "--token-file", str(empty))
    assert status == 2 and "the file is empty" in err

    monkeypatch.setenv("CACHETOP_TOKEN", TOKEN)
    status, err = serve()
    assert status == 2 and "serve needs a daemon to attach to" in err
    status, err = serve("--attach", f"http://user:{TOKEN}@127.0.0.1:9")
    assert status == 2 and "holds a user or password" in err and TOKEN not in err
    status, err = serve("--attach", "http://127.0.0.1:9", "--allow-actions")
    assert status == 2 and "--allow-actions: set $CACHETOP_ACTION_TOKEN" in err


async def test_serve_says_where_to_point_the_browser(tmp_path: Path) -> None:
    env = {**os.environ, "CACHETOP_TOKEN": TOKEN, "CACHETOP_ACTION_TOKEN": "action-token-99"}
    dead = f"http://127.0.0.1:{free_port()}"  # no daemon there: serve still starts, and says so
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cachetop", "serve", "--attach", dead, "--port", "0",
        stdout=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = [(await asyncio.wait_for(proc.stdout.readline(), 20)).decode() for _ in range(6)]
    proc.terminate()
    assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert lines[0].startswith("cachetop serve: open http://127.0.0.1:")
    assert lines[0].endswith("/ in a browser and sign in with the API token\n")
    port = lines[0].split(":")[3].split("/")[0]
    assert lines[1] == f"  every tab attaches to {dead} (no extra load on the caches)\n"
    assert lines[2] == (
        f"  the daemon does not answer now ({dead}: connection refused (is the daemon running?)): "
        "tabs retry\n"
    )
    assert lines[3] == "  tabs are read-only (--allow-actions lets them act through the daemon)\n"
    assert lines[4] == (
        f"  this machine only; from elsewhere: ssh -L {port}:127.0.0.1:{port} THIS_HOST, then http://127.0.0.1:{port}/\n"
    )
    assert lines[5] == "  Ctrl+C to stop\n"


def test_tabs_get_the_action_token_only_with_allow_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cachetop.commands.serve import add_arguments, tab_command, tab_environment

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    monkeypatch.setenv("CACHETOP_TOKEN", "restored-after-the-test")  # tab_environment sets os.environ
    monkeypatch.setenv("CACHETOP_ACTION_TOKEN", "action-token-77")
    plain = parser.parse_args(["--attach", "http://127.0.0.1:9150"])
    assert tab_environment(plain, TOKEN) == [
        "  tabs are read-only (--allow-actions lets them act through the daemon)"
    ]
    assert os.environ["CACHETOP_TOKEN"] == TOKEN and "CACHETOP_ACTION_TOKEN" not in os.environ
    assert shlex.split(tab_command(plain)) == [
        sys.executable, "-m", "cachetop", "--attach", "http://127.0.0.1:9150", "--read-only",
    ]  # fmt: skip

    action_file = tmp_path / "action-token"
    action_file.write_text("action-token-88\n")
    acting = parser.parse_args(
        ["--attach", "https://mon:9150", "--allow-actions", "--action-token-file", str(action_file),
         "--ca-file", str(action_file)]
    )  # fmt: skip
    tab_environment(acting, TOKEN)
    assert os.environ["CACHETOP_ACTION_TOKEN"] == "action-token-88"
    command = tab_command(acting)
    assert shlex.split(command) == [
        sys.executable, "-m", "cachetop", "--attach", "https://mon:9150", "--ca-file", str(action_file),
    ]  # fmt: skip
    assert "action-token-88" not in command and TOKEN not in command

"""Headless Chromium driven over the Chrome DevTools Protocol, with aiohttp's WebSocket client.

No driver library: Debian's `chromium` (installed by `make test-tools`) and the aiohttp that
textual-serve already brings. Chromium runs with a new empty profile and the flags that keep it
off the network (this machine's network is closed, and a test should not phone Google).

textual-serve draws the terminal with xterm.js on a canvas (WebGL or 2D), so the text is not in
the DOM. `XTERM_HOOK` runs before the page's scripts and keeps every xterm.js Terminal it sees
being built (the constructor assigns `this._addonManager`: a setter on Object.prototype catches
that assignment once, then steps aside), so `screen_text()` reads the terminal's own buffer: the
characters the page shows, as a person would read them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
)

XTERM_HOOK = """
(() => {
  window.__xterms = [];
  Object.defineProperty(Object.prototype, '_addonManager', {
    configurable: true,
    get() { return undefined; },
    set(value) {
      Object.defineProperty(this, '_addonManager',
                            {value, writable: true, configurable: true, enumerable: true});
      if (this._core !== undefined) window.__xterms.push(this);
    },
  });
})();
"""

SCREEN_TEXT = """
(() => {
  const term = (window.__xterms || [])[0];
  if (!term) return null;
  const buffer = term.buffer.active, lines = [];
  for (let i = 0; i < buffer.length; i++) {
    const line = buffer.getLine(i);
    lines.push(line ? line.translateToString(true) : '');
  }
  return lines.join('\\n');
})()
"""


class CdpError(RuntimeError):
    pass


class Chromium:
    """One headless Chromium with one page; `async with Chromium() as page:`."""

    def __init__(self, *, timeout_s: float = 20.0) -> None:
        if CHROMIUM is None:
            raise CdpError("chromium is not installed (make test-tools installs it)")
        self.timeout_s = timeout_s
        self._profile = Path(tempfile.mkdtemp(prefix="cachetop-chromium-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Chromium:
        self._process = subprocess.Popen(
            [
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={self._profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self._profile / "DevToolsActivePort"
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self._process.poll() is not None:
                raise CdpError(f"chromium exited with status {self._process.returncode}")
            if asyncio.get_running_loop().time() > deadline:
                raise CdpError("chromium did not open its DevTools port")
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().split("\n")[0])
        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = await self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        await self.send("Page.addScriptToEvaluateOnNewDocument", source=XTERM_HOOK)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            data = json.loads(message.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif "method" in data:
                self._events.put_nowait(data)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._ws is not None
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, self.timeout_s)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise CdpError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    async def navigate(self, url: str) -> None:
        """Loads url and waits for its load event."""
        while not self._events.empty():
            self._events.get_nowait()
        await self.send("Page.navigate", url=url)
        await self.wait_event("Page.loadEventFired")

    async def wait_event(self, method: str) -> dict[str, Any]:
        async def next_match() -> dict[str, Any]:
            while True:
                event = await self._events.get()
                if event["method"] == method:
                    return event

        return await asyncio.wait_for(next_match(), self.timeout_s)

    async def screen_text(self) -> str | None:
        """The terminal's text, row by row; None before the page made its terminal."""
        return await self.evaluate(SCREEN_TEXT)

    async def screenshot(self, path: Path) -> None:
        import base64

        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

"""The web side of `cachetop serve`: textual-serve's per-tab dashboards behind a sign-in.

textual-serve starts one process per browser tab (its `AppService` runs the command through the
shell, with a copy of this process's environment) and shows its `title` in the page. So the token
never goes on that command line or in the title: it reaches each tab's dashboard through the
environment (`CACHETOP_TOKEN`), which only the same user (and root) can read in /proc.

textual-serve itself has no authentication: anyone who can open the port gets a dashboard. Here
every page but the static files (xterm.js, fonts) needs a session cookie, which a person gets by
typing the token into the sign-in form (a POST: the token never sits in a URL, a browser history or
an access log). The cookie holds a random value made at start, not the token, is HttpOnly and
SameSite=Strict, and the terminal's WebSocket also checks that the page asking is this server's
(Origin), so another site open in the same browser cannot drive a dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import logging
import re
import secrets
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

log = logging.getLogger("cachetop.serve")

COOKIE = "cachetop_session"
QUIT_TIMEOUT_S = 5.0  # a tab's dashboard gets this long to quit when its tab closes
# A wrong token costs the guesser this long (per request; a sign-in is a person typing).
FAILED_SIGN_IN_DELAY_S = 1.0
# The page's template loads a font from fonts.googleapis.com: a dashboard on an internal network
# should not tell Google who opens it (and a closed network would wait on it). The font falls back
# to the local monospace fonts the page names next.
_EXTERNAL_FONT = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*>\s*", re.S)
_HEADERS = {
    # Keystrokes reach a live dashboard: no framing by another page (clickjacking).
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

SIGN_IN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ background: #0c181f; color: #e8eef2; font-family: menlo, monospace; display: flex;
  align-items: center; justify-content: center; height: 100vh; margin: 0; }}
form {{ background: #12232d; padding: 32px; width: 460px; }}
input {{ width: 100%; box-sizing: border-box; padding: 8px; margin: 12px 0; font-family: inherit; }}
button {{ padding: 8px 24px; background: #5e0ba7; color: #fff; border: none; font-family: inherit; }}
.error {{ color: #ff8a80; }}
</style></head>
<body><form method="post" action="/login">
<h2>{title}</h2>
<p>Sign in with the cachetop API token (the one in <code>$CACHETOP_TOKEN</code> or the token file
of whoever runs <code>cachetop serve</code>).</p>
{error}<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus>
<button type="submit" id="sign-in">Sign in</button>
</form></body></html>
"""


class DashboardServer(Server):
    """textual-serve's Server with a sign-in in front, the token kept out of page and argv."""

    def __init__(
        self,
        command: str,
        *,
        token: str,
        host: str,
        port: int,
        public_url: str | None = None,
        max_tabs: int = 20,
        title: str = "cachetop",
    ) -> None:
        super().__init__(command, host=host, port=port, title=title, public_url=public_url)
        self._token = token.encode()
        self._session = secrets.token_urlsafe(32)
        self._fixed_public_url = public_url
        self.max_tabs = max_tabs
        self.tabs = 0
        self._tab_tasks: set[asyncio.Task[Any]] = set()

    # -- authentication ------------------------------------------------------------------------------

    def signed_in(self, request: web.Request) -> bool:
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self._session.encode())

    def _same_origin(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:  # not a browser page (a script with the cookie): nothing to forge
            return True
        return origin.split("://", 1)[-1] == request.host

    def _sign_in_page(self, error: str = "", status: int = 401) -> web.Response:
        body = SIGN_IN_PAGE.format(
            title=html.escape(self.title), error=f'<p class="error">{html.escape(error)}</p>' if error else ""
        )
        return web.Response(text=body, content_type="text/html", status=status)

    async def handle_login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        given = form.get("token")
        given_bytes = given.strip().encode() if isinstance(given, str) else b""
        if not given_bytes or not hmac.compare_digest(given_bytes, self._token):
            await asyncio.sleep(FAILED_SIGN_IN_DELAY_S)
            return self._sign_in_page("That token is not the API token: try again.")
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            COOKIE, self._session, httponly=True, samesite="Strict", secure=request.secure, path="/"
        )
        raise response

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response = await self._route(request, handler)
        except web.HTTPException as exc:  # redirects, 404s: raised, and given the same headers
            exc.headers.update(_HEADERS)
            raise
        if not response.prepared:
            response.headers.update(_HEADERS)
        return response

    async def _route(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith("/static/") or path == "/login":
            response = await handler(request)
        elif not self.signed_in(request):
            if path == "/":
                response = self._sign_in_page()
            else:
                response = web.Response(status=401, text="sign in first: open / and enter the API token\n")
        elif path == "/ws" and not self._same_origin(request):
            response = web.Response(status=403, text="the page asking is not this server's\n")
        elif path == "/ws" and self.tabs >= self.max_tabs:
            response = web.Response(status=503, text=f"{self.max_tabs} tabs are open already (--max-tabs)\n")
        else:
            response = await handler(request)
        return response

    # -- pages ---------------------------------------------------------------------------------------

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        template = (self.templates_path / "app_index.html").read_text(encoding="utf-8")
        loader = jinja2.DictLoader({"app_index.html": _EXTERNAL_FONT.sub("", template)})
        aiohttp_jinja2.setup(app, loader=loader, autoescape=True)
        app.add_routes(
            [
                web.get("/", self.handle_page, name="index"),
                web.post("/login", self.handle_login, name="login"),
                web.get("/login", self.handle_login_page, name="login_page"),
                web.get("/ws", self.handle_tab, name="websocket"),
                web.get("/download/{key}", self.handle_download, name="download"),
                web.static("/static", Path(self.statics_path), name="static"),
            ]
        )
        return app

    async def handle_login_page(self, request: web.Request) -> web.StreamResponse:
        if self.signed_in(request):
            raise web.HTTPSeeOther("/")
        return self._sign_in_page(status=200)

    def _base_url(self, request: web.Request) -> str:
        """This server as the browser reached it (an SSH tunnel's port, a proxy's name)."""
        if self._fixed_public_url:
            return self._fixed_public_url.rstrip("/")
        return f"{request.scheme}://{request.host}"

    async def handle_page(self, request: web.Request) -> web.StreamResponse:
        base = self._base_url(request)
        font_size = request.query.get("fontsize", "16")
        ws_base = "wss" + base[5:] if base.startswith("https") else "ws" + base[4:]
        context = {
            "font_size": int(font_size) if font_size.isdigit() and 6 <= int(font_size) <= 48 else 16,
            "app_websocket_url": f"{ws_base}/ws",
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_tab(self, request: web.Request) -> web.StreamResponse:
        """One browser tab: one dashboard process, as textual-serve's handle_websocket, except that
        the process is always reaped (textual-serve asks it to quit and never waits for it: a
        dashboard that hangs would stay, and its pipes outlive the loop)."""
        task = asyncio.current_task()
        assert task is not None
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        self.tabs += 1
        self._tab_tasks.add(task)
        service: AppService | None = None
        try:
            await websocket.prepare(request)
            service = AppService(
                self.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("a dashboard tab failed")
        finally:
            self.tabs -= 1
            self._tab_tasks.discard(task)
            if service is not None:
                await _end(service)
            await websocket.close()
        return websocket

    async def close_tabs(self, timeout_s: float = QUIT_TIMEOUT_S + 2) -> None:
        """Ends every tab: its socket closes and its dashboard is told to quit (killed if it hangs)."""
        tasks = list(self._tab_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    # -- running -------------------------------------------------------------------------------------

    async def start(self) -> tuple[web.AppRunner, list[str]]:
        """Binds and starts serving; returns the runner and the URLs it listens on."""
        runner = web.AppRunner(await self._make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        urls = []
        for address in runner.addresses:
            host, port = address[0], address[1]
            urls.append(f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/")
        return runner, urls


async def _end(service: AppService) -> None:
    """Asks the tab's dashboard to quit; kills it if it has not within QUIT_TIMEOUT_S; reaps it."""
    process = service._process  # textual-serve keeps it private and never waits for it
    with contextlib.suppress(TimeoutError, OSError, RuntimeError):
        await asyncio.wait_for(asyncio.shield(service.stop()), QUIT_TIMEOUT_S)
    if process is None:
        return
    if process.returncode is None:
        try:
            await asyncio.wait_for(process.wait(), 0.5)
        except TimeoutError:
            process.kill()
            await process.wait()

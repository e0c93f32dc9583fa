"""One JSON POST within an AttemptDeadline, for webhook-style channels.

http.client rather than urllib: urllib follows redirects on its own (a POST answered with 301 or
302 becomes a GET to wherever the server says, whose 200 would look like a delivery) and opens
sockets we cannot reach to shut down. Here every socket comes from the deadline, no redirect is
followed, and the answer is read up to MAX_ANSWER_BYTES only. HTTPS_PROXY / HTTP_PROXY (and
NO_PROXY) are honoured through a CONNECT tunnel, as urllib would.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from cachetop import __version__
from cachetop.alerts.notify.deadline import AttemptDeadline

MAX_ANSWER_BYTES = 64 * 1024  # Slack answers "ok" or a small JSON object


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes  # at most MAX_ANSWER_BYTES


def post_json(
    url: str, payload: Any, deadline: AttemptDeadline, headers: Mapping[str, str] | None = None
) -> HttpAnswer:
    """Raises ValueError for a URL that cannot be used, OSError (and http.client errors) when the
    server cannot be reached or answers nonsense."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)  # ValueError for a bad port
    conn = _connection(parts.scheme, parts.hostname, port, deadline)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent_headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"cachetop/{__version__}",
        **(headers or {}),
    }
    try:
        conn.request("POST", path, body=json.dumps(payload).encode(), headers=sent_headers)
        reply = conn.getresponse()
        body = reply.read(MAX_ANSWER_BYTES)
        return HttpAnswer(reply.status, {k.lower(): v for k, v in reply.getheaders()}, body)
    finally:
        conn.close()


def _connection(scheme: str, host: str, port: int, deadline: AttemptDeadline) -> http.client.HTTPConnection:
    proxy = urllib.request.getproxies().get(scheme)
    if proxy and urllib.request.proxy_bypass(host):
        proxy = None
    target_host, target_port = host, port
    if proxy:
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        target_host, target_port = proxy_parts.hostname or "", proxy_parts.port or 8080
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(
            target_host, target_port, timeout=deadline.limit_s, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(target_host, target_port, timeout=deadline.limit_s)
    if proxy:
        tunnel_headers = {}
        if proxy_parts.username:
            login = f"{unquote(proxy_parts.username)}:{unquote(proxy_parts.password or '')}"
            tunnel_headers["Proxy-Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
        conn.set_tunnel(host, port, headers=tunnel_headers)
    # Every socket this connection opens (to the server or the proxy) is one the deadline can cut.
    conn._create_connection = deadline.create_connection  # type: ignore[attr-defined]
    return conn

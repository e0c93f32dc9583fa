"""Real servers for alert delivery tests: a loopback HTTP server that answers like Slack's
incoming-webhook endpoint and Web API `chat.postMessage`, and aiosmtpd with STARTTLS on a
certificate from a throw-away CA (trustme). slack-sdk and smtplib talk to them over TCP."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from cachetop.servers import free_port

WEBHOOK_PATH = "/services/T000/B000/XXXXSECRETXXXX"
BOT_TOKEN = "xoxb-test-token-0123456789"


@dataclass
class SlackRequest:
    time: float  # monotonic, when the server received it
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int  # what the server answered


@dataclass
class SlackStandIn:
    """Scripted answers: each request takes the next (status, headers) from `script`; when the
    script is empty it succeeds. Only successful requests count as delivered."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[SlackRequest] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _ts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def delivered(self) -> list[SlackRequest]:
        with self.lock:
            return [r for r in self.requests if r.status == 200 and r.body.get("_ok", True)]

    def start(self) -> SlackStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                stand_in.answer(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            status, headers = self.script.pop(0) if self.script else (200, {})
            record = SlackRequest(time.monotonic(), handler.path, body, dict(handler.headers), status)
            self.requests.append(record)
            if handler.path == WEBHOOK_PATH:
                reply = (
                    b"ok"
                    if status == 200
                    else {429: b"rate_limited", 404: b"no_service"}.get(status, b"error")
                )
                content_type = "text/html"
            elif handler.path == "/api/chat.postMessage":
                content_type = "application/json; charset=utf-8"
                if handler.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
                    record.body["_ok"] = False
                    reply = json.dumps({"ok": False, "error": "invalid_auth"}).encode()
                elif status == 200:
                    self._ts += 1
                    ts = f"1700000000.{self._ts:06d}"
                    record.body["_ts"] = ts
                    reply = json.dumps({"ok": True, "channel": "C0OPS", "ts": ts}).encode()
                else:
                    reply = json.dumps(
                        {"ok": False, "error": "ratelimited" if status == 429 else "fatal"}
                    ).encode()
            else:
                status, reply, content_type = 404, b"no_service", "text/html"
                record.status = 404
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(reply)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(reply)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class SmtpServer:
    port: int
    ca_file: Path
    messages: list[EmailMessage]
    envelopes: list[Envelope]
    logins: list[tuple[str, str]]
    controller: Controller

    @property
    def delivered(self) -> list[EmailMessage]:
        return list(self.messages)


class _Collect:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: Any, session: Session, envelope: Envelope) -> str:
        self.server.envelopes.append(envelope)
        self.server.messages.append(message_from_bytes(envelope.original_content or b""))
        return "250 OK"


def smtp_tls_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def start_smtp(
    tmp_path: Path, *, user: str = "alerts", password: str = "smtp-secret-pw", ca: trustme.CA | None = None
) -> SmtpServer:
    """aiosmtpd on a free port, STARTTLS required, AUTH LOGIN/PLAIN with one user."""
    ca = ca or trustme.CA()
    ca_file = tmp_path / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = SmtpServer(free_port(), ca_file, [], [], [], None)  # type: ignore[arg-type]

    def authenticate(
        smtp: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
            user,
            password,
        )
        if ok:
            server.logins.append((data.login.decode(), mechanism))
        return AuthResult(success=ok)

    server.controller = Controller(
        _Collect(server),
        hostname="127.0.0.1",
        port=server.port,
        tls_context=smtp_tls_context(ca),
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    server.controller.start()
    return server


def iter_text_parts(mail: EmailMessage) -> Iterator[tuple[str, str]]:
    for part in mail.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            text = payload.decode(part.get_content_charset() or "utf-8")
            yield part.get_content_type(), text.replace("\r\n", "\n")

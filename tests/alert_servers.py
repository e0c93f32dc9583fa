"""Real servers for alert delivery tests: a loopback HTTP server that answers like Slack's
incoming-webhook endpoint and Web API `chat.postMessage`, aiosmtpd with STARTTLS on a
certificate from a throw-away CA (trustme), and SlowPeer, a hostile server that answers one byte
every few seconds. cachetop's HTTP client and smtplib talk to them over TCP."""

from __future__ import annotations

import json
import select
import socket
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
    """Scripted answers: each request takes the next (status, headers) or (status, headers, body)
    from `script`; when the script is empty it succeeds. Only successful requests count as
    delivered. A GET (what urllib sends after following a 301/302) answers 200 "ok"."""

    script: list[tuple[int, dict[str, str]] | tuple[int, dict[str, str], bytes]] = field(default_factory=list)
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
            return [
                r
                for r in self.requests
                if r.status == 200 and r.body.get("_ok", True) and "_get" not in r.body
            ]

    def start(self) -> SlackStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                stand_in.answer(self, body)

            def do_GET(self) -> None:
                with stand_in.lock:
                    stand_in.requests.append(
                        SlackRequest(time.monotonic(), self.path, {"_get": True}, dict(self.headers), 200)
                    )
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            step = self.script.pop(0) if self.script else (200, {})
            status, headers = step[0], step[1]
            scripted_body = step[2] if len(step) > 2 else None  # type: ignore[misc]
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
            if scripted_body is not None:
                reply = scripted_body
                record.body["_ok"] = False  # whatever it says, a scripted body is not a delivery
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
    data_reply: str = "250 OK"  # what DATA is answered with
    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # address -> RCPT reply

    @property
    def delivered(self) -> list[EmailMessage]:
        return list(self.messages)


class _Collect:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, smtp: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.server.refuse_rcpt:
            return self.server.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: Any, session: Session, envelope: Envelope) -> str:
        if not self.server.data_reply.startswith("250"):
            return self.server.data_reply
        self.server.envelopes.append(envelope)
        self.server.messages.append(message_from_bytes(envelope.original_content or b""))
        return self.server.data_reply


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


# The start of a TLS handshake record that announces 16 KB: a client waits for all of it.
_TLS_RECORD = b"\x16\x03\x03\x40\x00" + b"\x02" * 16384
_HTTP_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
SLOW_MODES = ("http", "tls", "smtp", "starttls")


@dataclass
class SlowPeer:
    """A hostile server that accepts and then answers one byte every `interval_s`: never slow
    enough for a per-read timeout to fire, never done. Modes:
    - http: reads the request head, then dribbles an HTTP answer;
    - tls: dribbles a TLS handshake record at once (https, SMTP over implicit TLS);
    - smtp: dribbles the SMTP greeting;
    - starttls: greets, answers EHLO and STARTTLS at once, then dribbles the TLS handshake.
    It notes when each connection was accepted and when the client closed it."""

    mode: str
    interval_s: float = 2.0
    port: int = 0
    accepted: list[float] = field(default_factory=list)  # monotonic
    closed: list[float] = field(default_factory=list)  # monotonic: when the client hung up
    sent: int = 0  # bytes dribbled, over all connections
    _stop: threading.Event = field(default_factory=threading.Event)
    _listener: socket.socket | None = None

    def start(self) -> SlowPeer:
        assert self.mode in SLOW_MODES
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.mode == "http":
                    self._read_until(conn, b"\r\n\r\n")
                    self._dribble(conn, _HTTP_ANSWER)
                elif self.mode == "tls":
                    self._dribble(conn, _TLS_RECORD)
                elif self.mode == "smtp":
                    self._dribble(conn, b"220 slow.example ESMTP\r\n")
                else:
                    conn.sendall(b"220 slow.example ESMTP\r\n")
                    self._read_until(conn, b"\r\n")  # EHLO
                    conn.sendall(b"250-slow.example\r\n250 STARTTLS\r\n")
                    self._read_until(conn, b"\r\n")  # STARTTLS
                    conn.sendall(b"220 go ahead\r\n")
                    self._dribble(conn, _TLS_RECORD)
            except (OSError, EOFError):
                pass
            self.closed.append(time.monotonic())

    def _read_until(self, conn: socket.socket, marker: bytes) -> None:
        seen = b""
        while marker not in seen:
            chunk = conn.recv(4096)
            if not chunk:
                raise EOFError
            seen += chunk

    def _dribble(self, conn: socket.socket, data: bytes) -> None:
        """One byte per interval; whatever the client sends meanwhile is read and dropped, and
        its hanging up is noticed at once."""
        for byte in data:
            due = time.monotonic() + self.interval_s
            while (left := due - time.monotonic()) > 0:
                if self._stop.is_set():
                    return
                readable, _, _ = select.select([conn], [], [], min(left, 0.1))
                if readable and not conn.recv(4096):
                    raise EOFError
            conn.sendall(bytes([byte]))
            self.sent += 1


@dataclass
class ConnectProxy:
    """An HTTP proxy that only tunnels (CONNECT), as corporate proxies in front of Slack do. It
    notes each request line and Proxy-Authorization header, then pipes bytes both ways."""

    port: int = 0
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (request line, auth)
    _listener: socket.socket | None = None

    def start(self) -> ConnectProxy:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
            auth = next(
                (
                    ln.split(":", 1)[1].strip()
                    for ln in lines[1:]
                    if ln.lower().startswith("proxy-authorization:")
                ),
                None,
            )
            self.requests.append((lines[0], auth))
            method, target, _ = lines[0].split(" ", 2)
            if method != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pipe(client, upstream)

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while True:
            readable, _, _ = select.select(list(peers), [], [], 10)
            if not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)

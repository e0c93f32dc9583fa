"""A small HTTP/1.1 client on asyncio streams, for the daemon's /api/v1 (sources/attach.py).

Only what the API speaks: one request per connection (`Connection: close`), a Content-Length
body or a stream read line by line (server-sent events). Bounded: headers and bodies have a cap
and every read a deadline, so a daemon that misbehaves cannot hold a dashboard's memory or loop.
Errors are HttpError with one line that names the URL without any secret.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 256 * 1024 * 1024  # a snapshot of a 10,000-instance fleet is tens of MB
LINE_LIMIT = 256 * 1024 * 1024  # one SSE data line is one snapshot


class HttpError(Exception):
    """A request that failed: the message is one line, fit for a banner."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the daemon is: scheme, host, port and the path it is served under."""

    scheme: str
    host: str
    port: int
    base: str  # "" or "/prefix" (behind a reverse proxy)

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"--attach {url!r}: give http://HOST:PORT or https://HOST:PORT (the daemon's port)"
            )
        if parts.username or parts.password:
            raise ValueError(
                "--attach: no credentials in the URL; the token goes in $CACHETOP_TOKEN or --token-file"
            )
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.base}"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def body(self, timeout: float) -> bytes:
        length = int(self.headers.get("content-length", "-1"))
        if length > MAX_BODY_BYTES:
            raise HttpError(f"answer too large ({length:,} bytes)")
        if length >= 0:
            return await asyncio.wait_for(self.reader.readexactly(length), timeout)
        return await asyncio.wait_for(self.reader.read(MAX_BODY_BYTES), timeout)

    async def json(self, timeout: float) -> Any:
        try:
            return json.loads(await self.body(timeout))
        except ValueError:
            raise HttpError(f"the daemon answered {self.status} with something that is not JSON") from None

    def close(self) -> None:
        self.writer.close()


async def request(
    endpoint: Endpoint,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    body: Any = None,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> Response:
    """Sends one request and reads the status and headers; the caller reads or streams the body
    and closes the Response. Connection and TLS errors become HttpError."""
    data = b"" if body is None else json.dumps(body).encode()
    context = ssl_context if endpoint.scheme == "https" else None
    if endpoint.scheme == "https" and context is None:
        context = ssl.create_default_context()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.port, ssl=context, limit=LINE_LIMIT), timeout
        )
    except TimeoutError:
        raise HttpError(f"{endpoint.display}: no answer within {timeout:g}s") from None
    except ssl.SSLCertVerificationError as exc:
        raise HttpError(f"{endpoint.display}: TLS certificate not trusted ({exc.verify_message}; "
                        "give the CA with --ca-file)") from None  # fmt: skip
    except ConnectionRefusedError:
        raise HttpError(f"{endpoint.display}: connection refused (is the daemon running?)") from None
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise HttpError(f"{endpoint.display}: {reason}") from None
    lines = [f"{method} {endpoint.base}{path} HTTP/1.1", f"Host: {endpoint.host}:{endpoint.port}",
             "Connection: close", "User-Agent: cachetop-attach"]  # fmt: skip
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
    try:
        await asyncio.wait_for(writer.drain(), timeout)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except TimeoutError:
        writer.close()
        raise HttpError(f"{endpoint.display}: no answer within {timeout:g}s") from None
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError) as exc:
        writer.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "the connection closed"
        raise HttpError(f"{endpoint.display}: {reason}") from None
    if len(head) > MAX_HEAD_BYTES:
        writer.close()
        raise HttpError(f"{endpoint.display}: headers too large")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        writer.close()
        raise HttpError(f"{endpoint.display}: not an HTTP answer (is this the daemon's --metrics-port?)")
    found: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            found[name.strip().lower()] = value.strip()
    return Response(int(parts[1]), found, reader, writer)

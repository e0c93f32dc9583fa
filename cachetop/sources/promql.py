"""A small, bounded client for Prometheus's HTTP query API (`/api/v1/query`, `/api/v1/query_range`).

Stdlib only (urllib in a worker thread). Every request has a total timeout and every reply a
size cap, so a huge fleet or a wedged server can neither eat the dashboard's memory nor hang it.
Errors name the server as `host:port` only: a URL may carry a password (`user:pass@`), and a
query may carry label values; neither reaches a message.

    url = PromUrl.parse("prometheus://prom:9090?match=job%3D%22cachetop%22")
    client = PromClient(url)
    series = await client.query('cachetop_hit_ratio{job="cachetop"}', at=time.time())
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from cachetop.util.redact import register_secret

SCHEMES = {"prometheus": "http", "prometheus+http": "http", "prometheus+https": "https"}
DEFAULT_PORT = 9090
TIMEOUT_S = 10.0  # one request, all of it
MAX_REPLY_BYTES = 64 * 1024 * 1024  # 10,000 instances x one metric is ~3 MB of JSON
CONCURRENT_QUERIES = 4  # in flight at once against one Prometheus


class PromError(Exception):
    """One line for a person: which server, what went wrong; never a secret."""


@dataclass(frozen=True, slots=True)
class PromUrl:
    """`prometheus://[user:password@]host[:port][/path][?match=LABELS]` taken apart."""

    base: str  # http(s)://host:port/path, without credentials
    where: str  # host:port, for messages
    match: str = ""  # label matchers added to every selector, without braces
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> PromUrl:
        parts = urllib.parse.urlsplit(text)
        scheme = SCHEMES.get(parts.scheme)
        if scheme is None:
            raise PromError(
                f"--source: {parts.scheme or 'no'} scheme; allowed: prometheus://host:port,"
                " prometheus+https://host:port"
            )
        if not parts.hostname:
            raise PromError("--source: no host (e.g. prometheus://prometheus.internal:9090)")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise PromError("--source: the port is not a number from 1 to 65535") from None
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        where = f"{host}:{port}"
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"match"})
        if unknown:
            raise PromError(f"--source: unknown parameter {unknown[0]!r} (allowed: match)")
        match = ",".join(m.strip().strip("{}") for m in query.get("match", []) if m.strip())
        password = urllib.parse.unquote(parts.password) if parts.password else None
        register_secret(password)
        return cls(
            base=f"{scheme}://{where}{parts.path.rstrip('/')}",
            where=where,
            match=match,
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            password=password,
        )

    def selector(self, metric: str, extra: str = "") -> str:
        """`metric{match,extra}`: the series of one metric, narrowed by ?match."""
        inner = ",".join(x for x in (self.match, extra) if x)
        return f"{metric}{{{inner}}}" if inner else metric


@dataclass(frozen=True, slots=True)
class Series:
    labels: dict[str, str]
    value: float | None = None  # an instant vector's value (NaN and infinities are None)
    points: tuple[tuple[float, float | None], ...] = ()  # a range vector's (time, value)


class PromClient:
    def __init__(self, url: PromUrl, *, timeout: float = TIMEOUT_S, max_bytes: int = MAX_REPLY_BYTES) -> None:
        self.url = url
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.queries = 0  # requests sent, for tests and the footer of a bench
        self._slots = asyncio.Semaphore(CONCURRENT_QUERIES)

    async def query(self, promql: str, *, at: float) -> list[Series]:
        data = await self._get("query", {"query": promql, "time": f"{at:.3f}"})
        return [Series(r["metric"], value=_number(r["value"][1])) for r in _vector(data, self.url.where)]

    async def query_range(self, promql: str, *, start: float, end: float, step: float) -> list[Series]:
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:.3f}"}
        data = await self._get("query_range", params)
        out = []
        for r in _vector(data, self.url.where, "matrix"):
            points = tuple((float(t), _number(v)) for t, v in r["values"])
            out.append(Series(r["metric"], points=points))
        return out

    async def _get(self, endpoint: str, params: dict[str, str]) -> Any:
        async with self._slots:
            self.queries += 1
            return await asyncio.to_thread(self._fetch, endpoint, params)

    def _fetch(self, endpoint: str, params: dict[str, str]) -> Any:
        where = self.url.where
        address = f"{self.url.base}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(address, headers={"Accept": "application/json"})
        if self.url.username is not None:
            token = base64.b64encode(f"{self.url.username}:{self.url.password or ''}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                body = answer.read(self.max_bytes + 1)
        except urllib.error.HTTPError as exc:
            body = exc.read(64 * 1024)
            raise PromError(f"Prometheus at {where}: HTTP {exc.code}{_api_error(body)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            kind = "timed out" if isinstance(reason, TimeoutError) else _short(reason)
            raise PromError(f"Prometheus at {where}: cannot reach it ({kind})") from None
        if len(body) > self.max_bytes:
            raise PromError(
                f"Prometheus at {where}: a reply was larger than {self.max_bytes // (1024 * 1024)} MiB;"
                " narrow the fleet with ?match=LABELS"
            )
        try:
            reply = json.loads(body)
        except ValueError:
            raise PromError(f"Prometheus at {where}: the reply is not JSON (is this Prometheus?)") from None
        if not isinstance(reply, dict) or reply.get("status") != "success":
            raise PromError(f"Prometheus at {where}: the query failed{_api_error(body)}")
        return reply.get("data")


def _vector(data: Any, where: str, kind: str = "vector") -> list[dict[str, Any]]:
    if (
        not isinstance(data, dict)
        or data.get("resultType") != kind
        or not isinstance(data.get("result"), list)
    ):
        raise PromError(f"Prometheus at {where}: expected a {kind} in the reply")
    return data["result"]


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _api_error(body: bytes) -> str:
    """Prometheus's own one-line reason (`bad_data: parse error...`), cut short."""
    try:
        reply = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(reply, dict) or "error" not in reply:
        return ""
    text = f"{reply.get('errorType', 'error')}: {reply['error']}"
    return f" ({_short(text)})"


def _short(reason: object) -> str:
    text = " ".join(str(reason).split())
    return text if len(text) <= 160 else text[:157] + "..."

"""Target URLs -> Target: where an instance lives and how to log in.

Every message here is safe to print: passwords (even in a malformed URL) are redacted, and
registered for scrubbing before any validation can echo them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from cachetop.redact import register_secret

SCHEMES = {
    "redis": ("redis", False),
    "rediss": ("redis", True),
    "valkey": ("valkey", False),
    "valkeys": ("valkey", True),
    "memcached": ("memcached", False),
}
# Schemes that name several hosts: a cluster's seeds, or the sentinels that know a master.
MODE_SCHEMES = {
    "redis-cluster": ("redis", False, "cluster"),
    "rediss-cluster": ("redis", True, "cluster"),
    "redis-sentinel": ("redis", False, "sentinel"),
    "rediss-sentinel": ("redis", True, "sentinel"),
}
DEFAULT_PORTS = {"redis": 6379, "valkey": 6379, "memcached": 11211}
SENTINEL_PORT = 26379
URL_FORMS = "redis://[user:password@]host:port[/db], rediss://…, valkey://…, memcached://host:port"
MULTI_HOST_FORMS = "redis-cluster://seed1:port,seed2:port, redis-sentinel://host:26379[,host2:26379]/MASTER"


@dataclass(frozen=True, slots=True)
class Target:
    """Where an instance lives and how to log in. repr() and str() never show the password."""

    kind: str  # redis | valkey | memcached (valkey is a hint; the server's INFO decides)
    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    mode: str = "single"  # single | cluster (host:port is the first seed) | sentinel
    seeds: tuple[tuple[str, int], ...] = ()  # every seed or sentinel, the first one included
    service: str | None = None  # the master's name, for sentinel

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    @property
    def redacted_url(self) -> str:
        scheme = {v: k for k, v in SCHEMES.items() if not v[1]}.get((self.kind, False), self.kind)
        if self.mode != "single":
            scheme = f"redis-{self.mode}"
        if self.tls:
            scheme = scheme.replace("redis", "rediss", 1) if self.mode != "single" else scheme + "s"
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}{':***' if self.password else ''}@"
        hosts = ",".join(format_address(h, p) for h, p in self.seeds) or self.address
        path = f"/{self.service}" if self.service else (f"/{self.db}" if self.db else "")
        return f"{scheme}://{auth}{hosts}{path}"

    def __str__(self) -> str:
        return self.redacted_url


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_target(url: str) -> Target:
    """Parses a target URL; ValueError messages never contain the password."""
    _register_url_secrets(url)
    if "://" not in url:
        raise ValueError(f"{_redact(url)!r} is not a URL (allowed: {URL_FORMS})")
    if url.split("://", 1)[0].lower() in MODE_SCHEMES:
        return _parse_multi_host(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"{_redact(url)!r} has a bad port (allowed: {URL_FORMS})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r} in {_redact(url)!r} (allowed: {URL_FORMS})")
    kind, tls = SCHEMES[scheme]
    host = parts.hostname
    if not host:
        raise ValueError(f"{_redact(url)!r} has no host (allowed: {URL_FORMS})")
    db = 0
    path = parts.path.strip("/")
    if path:
        if kind == "memcached" or not path.isdigit():
            raise ValueError(
                f"{_redact(url)!r}: the path must be a database number like /0 (allowed: {URL_FORMS})"
            )
        db = int(path)
    if parts.query or parts.fragment:
        raise ValueError(f"{_redact(url)!r}: query strings are not supported (allowed: {URL_FORMS})")
    if parts.password:
        register_secret(unquote(parts.password))
    return Target(
        kind=kind,
        host=host,
        port=port or DEFAULT_PORTS[kind],
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def _parse_multi_host(url: str) -> Target:
    """redis-cluster://[auth@]h1:p1,h2:p2 and redis-sentinel://[auth@]h1:p1,h2:p2/MASTER."""
    scheme, rest = url.split("://", 1)
    kind, tls, mode = MODE_SCHEMES[scheme.lower()]
    netloc, _, path = rest.partition("/")
    auth, _, hosts = netloc.rpartition("@")
    default_port = SENTINEL_PORT if mode == "sentinel" else DEFAULT_PORTS[kind]
    seeds: list[tuple[str, int]] = []
    for part in hosts.split(","):
        try:
            parsed = urlsplit(f"redis://{part.strip()}")
            host, port = parsed.hostname, parsed.port
        except ValueError:
            raise ValueError(
                f"{_redact(url)!r} has a bad port in {part!r} (allowed: {MULTI_HOST_FORMS})"
            ) from None
        if not host:
            raise ValueError(f"{_redact(url)!r} has an empty host (allowed: {MULTI_HOST_FORMS})")
        seeds.append((host, port or default_port))
    path = path.strip("/")
    if mode == "sentinel" and (not path or "/" in path):
        raise ValueError(f"{_redact(url)!r}: name the master, as in redis-sentinel://host:26379/mymaster")
    if mode == "cluster" and path not in ("", "0"):
        raise ValueError(f"{_redact(url)!r}: a cluster has only database 0")
    if "?" in path or "#" in path:
        raise ValueError(f"{_redact(url)!r}: query strings are not supported (allowed: {MULTI_HOST_FORMS})")
    username, _, password = auth.partition(":") if auth else ("", "", "")
    if password:
        register_secret(unquote(password))
    return Target(
        kind=kind,
        host=seeds[0][0],
        port=seeds[0][1],
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls=tls,
        mode=mode,
        seeds=tuple(seeds),
        service=unquote(path) if mode == "sentinel" else None,
    )


def _redact(url: str) -> str:
    """A URL-like string safe to print: no password (even in a malformed URL), no query string.

    Everything before the last "@" may hold a password (people type "/" and ":" in passwords
    without encoding them), so only a user name before a ":" survives; a query string may hold
    one too, so it is dropped.
    """
    text, query, _ = url.partition("?")
    scheme, sep, rest = text.partition("://") if "://" in text else ("", "", text)
    if "@" in rest:
        auth, _, host = rest.rpartition("@")
        user, colon, _ = auth.partition(":")
        # Without a ":", the one part may be a password typed where a user name goes.
        rest = f"{user}:***@{host}" if colon else f"***@{host}"
    return f"{scheme}{sep}{rest}" + ("?…" if query or url.endswith("?") else "")


def _register_url_secrets(url: str) -> None:
    """Registers anything that may be a password in a URL, before any validation can echo it."""
    text, _, query = url.partition("?")
    rest = text.split("://", 1)[-1]
    if "@" in rest:
        auth = rest.rpartition("@")[0]
        secret = auth.partition(":")[2] if ":" in auth else auth
        for value in (secret, unquote(secret)):
            register_secret(value)
    for part in query.split("&"):
        value = part.partition("=")[2]
        for item in (value, unquote(value)):
            register_secret(item)

"""Target URLs -> Target: where an instance lives and how to log in.

Every message here is safe to print: passwords (even in a malformed URL) are redacted, and
registered for scrubbing before any validation can echo them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from cachetop.util.redact import register_secret
from cachetop.util.safe_text import display_key

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


MAX_PORT = 65535
# A sanity bound for /db: servers default to 16 databases, and a number this large is a typo.
# The server's own range is checked when cachetop connects (see backends/redis_db.py).
MAX_DB = 65535


@dataclass(frozen=True, slots=True)
class _Split:
    """A URL cut into parts before anything is validated: `auth` (which may hold a password) is
    never echoed; `shown` is the URL as every error message prints it."""

    scheme: str | None  # None: no "://" in the text
    auth: str | None  # everything before the last "@", or None
    netloc: str  # host[:port] or host:port,host:port...
    path: str
    query: bool  # a "?" or "#" followed the host part (never shown: it may hold a password)

    @property
    def shown(self) -> str:
        return _shown(self)


def parse_target(url: str) -> Target:
    """Parses a target URL; ValueError messages never contain the password.

    The password is cut out before anything else is parsed: user information runs to the LAST
    "@", so a password may hold any character (":", "/", "?", "#", "@", "[", "%", spaces...),
    written as-is or percent-encoded. Error messages show the URL with it replaced by ***.
    """
    split = _split(url)
    _register_secrets(split)
    if split.scheme is None:
        raise ValueError(f"{_quoted(split.shown)} is not a URL (allowed: {URL_FORMS})")
    scheme = split.scheme.lower()
    if scheme in MODE_SCHEMES:
        return _parse_multi_host(split)
    if scheme not in SCHEMES:
        raise ValueError(
            f"unknown scheme {_quoted(split.scheme)} in {_quoted(split.shown)} (allowed: {URL_FORMS})"
        )
    kind, tls = SCHEMES[scheme]
    if split.query:
        raise ValueError(f"{_quoted(split.shown)}: query strings are not supported (allowed: {URL_FORMS})")
    host, port = _host_port(split.netloc, DEFAULT_PORTS[kind], split, URL_FORMS)
    db = 0
    path = split.path.strip("/")
    if path and kind == "memcached":
        raise ValueError(f"{_quoted(split.shown)}: memcached has no databases (remove the path)")
    if path:
        if not re.fullmatch(r"[0-9]+", path):
            raise ValueError(
                f"{_quoted(split.shown)}: the path must be a database number like /0, "
                f"0-{MAX_DB} (allowed: {URL_FORMS})"
            )
        db = int(path)
        if db > MAX_DB:
            raise ValueError(f"{_quoted(split.shown)}: database {db} is out of range (allowed: 0-{MAX_DB})")
    username, password = _credentials(split.auth)
    return Target(kind=kind, host=host, port=port, db=db, username=username, password=password, tls=tls)


def _parse_multi_host(split: _Split) -> Target:
    """redis-cluster://[auth@]h1:p1,h2:p2 and redis-sentinel://[auth@]h1:p1,h2:p2/MASTER."""
    kind, tls, mode = MODE_SCHEMES[(split.scheme or "").lower()]
    default_port = SENTINEL_PORT if mode == "sentinel" else DEFAULT_PORTS[kind]
    if split.query:
        raise ValueError(
            f"{_quoted(split.shown)}: query strings are not supported (allowed: {MULTI_HOST_FORMS})"
        )
    seeds = [
        _host_port(part.strip(), default_port, split, MULTI_HOST_FORMS) for part in split.netloc.split(",")
    ]
    path = split.path.strip("/")
    if mode == "sentinel" and (not path or "/" in path):
        raise ValueError(
            f"{_quoted(split.shown)}: name the master, as in redis-sentinel://host:26379/mymaster"
        )
    if mode == "cluster" and path not in ("", "0"):
        raise ValueError(f"{_quoted(split.shown)}: a cluster has only database 0")
    username, password = _credentials(split.auth)
    return Target(
        kind=kind,
        host=seeds[0][0],
        port=seeds[0][1],
        username=username,
        password=password,
        tls=tls,
        mode=mode,
        seeds=tuple(seeds),
        service=unquote(path) if mode == "sentinel" else None,
    )


def _split(url: str) -> _Split:
    head, sep, rest = url.partition("://")
    scheme = head if sep else None
    if not sep:
        rest = url
    auth: str | None = None
    if "@" in rest:
        auth, _, rest = rest.rpartition("@")
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    rest, query = rest[:cut], cut < len(rest)
    netloc, _, path = rest.partition("/")
    return _Split(scheme, auth, netloc, path, query)


def _shown(split: _Split) -> str:
    auth = ""
    if split.auth is not None:
        user, colon, _ = split.auth.partition(":")
        # Without a ":", the one part may be a password typed where a user name goes.
        auth = f"{user}:***@" if colon else "***@"
    scheme = f"{split.scheme}://" if split.scheme is not None else ""
    path = f"/{split.path}" if split.path else ""
    # With no "@", a "port" that is not a number is often a password whose "@" was forgotten
    # (redis://:secret/host): it is shown as ***. After an "@", the password is already cut out.
    netloc = split.netloc if split.auth is not None else _mask_ports(split.netloc)
    return f"{scheme}{auth}{netloc}{path}" + ("?…" if split.query else "")


def _mask_ports(netloc: str) -> str:
    """host:***, for each host:port whose port is not a number."""
    out = []
    for part in netloc.split(","):
        host, colon, port = part.rpartition(":") if not part.endswith("]") else (part, "", "")
        if colon and port and not port.isdigit():
            part = f"{host}:***"
        out.append(part)
    return ",".join(out)


def _host_port(text: str, default_port: int, split: _Split, forms: str) -> tuple[str, int]:
    """host, host:port, [v6] or [v6]:port -> (host, port), with the port in 1-65535."""
    shown = _quoted(split.shown)
    if text.startswith("["):
        host, closed, after = text[1:].partition("]")
        if not closed or (after and not after.startswith(":")):
            raise ValueError(f"{shown} has a malformed [IPv6] address (allowed: {forms})")
        port_text = after[1:] if after else None
    else:
        host, colon, port_text_or_empty = text.partition(":")
        port_text = port_text_or_empty if colon else None
    if not host:
        raise ValueError(f"{shown} has no host (allowed: {forms})")
    if not re.fullmatch(r"[^\s/?#@\[\]\\\x00-\x1f\x7f]+", host):
        raise ValueError(f"{shown}: the host holds characters a host name cannot (allowed: {forms})")
    if port_text is None:
        return host.lower(), default_port
    if not re.fullmatch(r"[0-9]{1,10}", port_text):
        raise ValueError(f"{shown} has a bad port: not a number (allowed: 1-{MAX_PORT}; {forms})")
    port = int(port_text)
    if not 1 <= port <= MAX_PORT:
        raise ValueError(f"{shown}: port {port} is out of range (allowed: 1-{MAX_PORT})")
    return host.lower(), port


def _credentials(auth: str | None) -> tuple[str | None, str | None]:
    if auth is None:
        return None, None
    username, _, password = auth.partition(":")
    return unquote(username) or None, unquote(password) or None


def _register_secrets(split: _Split) -> None:
    """Registers anything that may be a password, before any validation can echo it: the
    password and the whole user information (all of it when it has no ":"), or, with no "@",
    a "port" that is not a number."""
    if split.auth is not None:
        user, colon, password = split.auth.partition(":")
        for value in (password, split.auth) if colon else (user,):
            register_secret(value)
            register_secret(unquote(value))
        return
    for part in split.netloc.split(","):
        port = part.rpartition(":")[2]
        if port and not port.isdigit() and ":" in part and not part.endswith("]"):
            register_secret(port)


def _quoted(text: str) -> str:
    """A URL (or part) as messages show it: quoted and escaped once, so a control character in a
    config cannot reach a terminal raw (repr() would escape the escapes a second time)."""
    return f"'{display_key(text, 200)}'"


def _redact(url: str) -> str:
    """A URL-like string safe to print: no password (even in a malformed URL), no query string."""
    return _shown(_split(url))

"""Other cachetop processes watching the same server: their traffic and connections left out.

Redis and Valkey (every version): each cachetop connection that sends commands carries its own
running count in its client name, `cachetop…:<token>:<count>`, set in the same write as the
commands it counts (the poll sends `CLIENT SETNAME` first in its batch, the probe *is* a
`CLIENT SETNAME`, the hot-key side connection prefixes each command with one). The server runs a
client's batch without interleaving another client's, so whenever a poll's `CLIENT LIST` runs,
each name counts exactly the commands the server has processed on that connection. A poll reads
`CLIENT LIST` and `INFO` in one batch and takes out of ops/s what the other processes' counts
grew by (ViewerTally); a name may also claim the keyspace hits and misses its commands caused
(`…:<count>:<hits>:<misses>`, the keyspace analysis), which come out of the hit ratio the same
way. Short-lived connections (a MONITOR phase) claim their few commands in
advance on the process's poll connection (claim_ahead), since they may come and go between two
polls of another process. `connections` leaves out every client named `cachetop*`.

Memcached has no client names; its other cachetop processes add no operations (`stats`, `mn`,
`version` and `watch` move none of the counters ops/s is made of), and their connections are
known from a small registry file each process on this host keeps (ViewerRegistry).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# One per process: tells this process's connections from another cachetop's.
TOKEN = secrets.token_hex(4)
OWN_PREFIX = b"cachetop"
_COUNTED = re.compile(rb"^(cachetop[A-Za-z0-9_.-]*):([0-9a-f]{8}):(\d{1,18})(?::(\d{1,18}):(\d{1,18}))?$")


def counted_name(base: str, count: int, reads: tuple[int, int] | None = None) -> str:
    """The client name that says `count` commands were sent on this connection (this
    SETNAME included), and, for a connection whose commands look keys up (the keyspace
    analysis), the keyspace hits and misses they caused: `reads` = (hits, misses)."""
    tail = f":{reads[0]}:{reads[1]}" if reads is not None else ""
    return f"{base}:{TOKEN}:{count}{tail}"


def parse_counted(name: bytes) -> tuple[bytes, int] | None:
    """(token, count) from a counted cachetop name, or None."""
    match = _COUNTED.match(name)
    return (match.group(2), int(match.group(3))) if match else None


def parse_counted_reads(name: bytes) -> tuple[int, int]:
    """(hits, misses) a counted cachetop name claims; (0, 0) when it claims none."""
    match = _COUNTED.match(name)
    if match is None or match.group(4) is None:
        return 0, 0
    return int(match.group(4)), int(match.group(5))


def parse_client_list(raw: bytes) -> list[dict[bytes, bytes]]:
    """CLIENT LIST output -> one dict per client (id=..., name=..., flags=..., omem=...)."""
    clients = []
    for line in raw.splitlines():
        fields: dict[bytes, bytes] = {}
        for part in line.split(b" "):
            key, sep, value = part.partition(b"=")
            if sep:
                fields[key] = value
        if fields:
            clients.append(fields)
    return clients


@dataclass(frozen=True, slots=True)
class ForeignMonitor:
    """A MONITOR client that is not cachetop's: a person's redis-cli, a forgotten tool."""

    addr: str
    age_s: int
    omem: int
    name: str


@dataclass
class ViewerTally:
    """What other cachetop processes sent to one server, from CLIENT LIST names, cumulative.

    `commands` only grows: a connection's count grows by what the server processed on it, a
    connection first seen after the previous listing counts whole (it was made since), and a
    connection that is gone keeps what it had. The very first listing is a baseline.
    """

    commands: int = 0
    hits: int = 0  # keyspace hits/misses other processes' names claim (the keyspace analysis)
    misses: int = 0
    connections: int = 0  # other cachetop connections in the latest listing
    viewers: int = 0  # other cachetop processes (tokens) in the latest listing, plus unnamed ones
    own_connections: int = 0  # this process's connections in the latest listing
    uncounted: int = 0  # cachetop* connections whose name counts nothing (an older cachetop...)
    foreign_monitors: tuple[ForeignMonitor, ...] = ()
    _seen: dict[bytes, int] = field(default_factory=dict)  # client id -> last count
    _seen_reads: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # client id -> (hits, misses)
    _listed: bool = False

    def update(self, clients: Iterable[Mapping[bytes, bytes]], continuous: bool) -> None:
        """One CLIENT LIST. `continuous`: the previous poll listed clients too, so a connection
        not seen then is new since; otherwise new connections are a baseline."""
        seen: dict[bytes, int] = {}
        seen_reads: dict[bytes, tuple[int, int]] = {}
        tokens: set[bytes] = set()
        others = own = unnamed = 0
        monitors = []
        own_token = TOKEN.encode()
        for client in clients:
            name = client.get(b"name", b"")
            if name.startswith(OWN_PREFIX):
                counted = parse_counted(name)
                if counted is not None and counted[0] == own_token:
                    own += 1
                    continue
                others += 1
                if counted is None:
                    unnamed += 1
                    continue
                token, count = counted
                tokens.add(token)
                cid = client.get(b"id", b"")
                seen[cid] = count
                reads = seen_reads[cid] = parse_counted_reads(name)
                before = self._seen.get(cid)
                if before is not None:
                    self.commands += max(0, count - before)
                    was = self._seen_reads.get(cid, (0, 0))
                    self.hits += max(0, reads[0] - was[0])
                    self.misses += max(0, reads[1] - was[1])
                elif continuous and self._listed:
                    self.commands += count
                    self.hits += reads[0]
                    self.misses += reads[1]
            elif b"O" in client.get(b"flags", b""):
                monitors.append(
                    ForeignMonitor(
                        addr=client.get(b"addr", b"?").decode("ascii", "replace"),
                        age_s=_int(client.get(b"age")),
                        omem=_int(client.get(b"omem")),
                        name=name.decode("utf-8", "replace"),
                    )
                )
        self._seen = seen
        self._seen_reads = seen_reads
        self._listed = True
        self.connections, self.own_connections, self.uncounted = others, own, unnamed
        self.viewers = len(tokens) + (1 if unnamed and not tokens else 0)
        self.foreign_monitors = tuple(monitors)


def _int(raw: bytes | None) -> int:
    try:
        return int(raw or b"0")
    except ValueError:
        return 0


# --- advance claims for short-lived connections ------------------------------------------------

Claim = Callable[[int], Awaitable[None]]
_CLAIMS: dict[tuple[str, int], Claim] = {}


def register_claim(host: str, port: int, claim: Claim) -> Callable[[], None]:
    """The poll connection of (host, port) takes advance claims; returns the way to withdraw."""
    key = (host, port)
    _CLAIMS[key] = claim

    def withdraw() -> None:
        if _CLAIMS.get(key) is claim:
            del _CLAIMS[key]

    return withdraw


async def claim_ahead(host: str, port: int, n: int) -> bool:
    """Adds `n` commands a short-lived connection is about to send to this process's count on
    its poll connection, so other processes take them out even if that connection comes and
    goes between their polls. False when nothing polls (host, port) in this process."""
    claim = _CLAIMS.get((host, port))
    if claim is None:
        return False
    with contextlib.suppress(Exception):  # a claim that fails costs only accuracy
        await claim(n)
        return True
    return False


# --- memcached: a registry of connections, per host and user ----------------------------------


def registry_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"cachetop-{os.getuid()}" / "viewers"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ViewerRegistry:
    """Each cachetop process on this host lists, per memcached address, the connections it holds;
    the others read the lists (at most once a second) and leave those connections out."""

    READ_EVERY_S = 1.0

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or registry_dir()
        self.path = self.directory / f"{os.getpid()}-{TOKEN}.json"
        self._mine: dict[str, int] = {}
        self._others: dict[str, tuple[int, int]] = {}  # address -> (connections, viewers)
        self._read_at = -1e9

    def publish(self, address: str, connections: int) -> None:
        if self._mine.get(address) == connections:
            return
        self._mine[address] = connections
        with contextlib.suppress(OSError):
            self.directory.parent.mkdir(exist_ok=True, mode=0o700)  # cachetop-<uid>, ours alone
            self.directory.mkdir(exist_ok=True, mode=0o700)
            if self._trusted():
                self._write()
        self._read_at = -1e9  # read the others again with this change

    def _trusted(self) -> bool:
        """Only a directory this user owns, that nobody else can write, and that is not a link
        counts: in a shared /tmp, another local user could create it first and plant lists that
        make cachetop leave real application connections out of its count."""
        try:
            for path in (self.directory.parent, self.directory):
                st = os.lstat(path)
                if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
                    return False
        except OSError:
            return False
        return True

    def _write(self) -> None:
        """Whole or not at all (write, then rename): a reader never sees half a list."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "instances": self._mine}))
        tmp.replace(self.path)

    def withdraw_all(self, address: str) -> None:
        """Forgets every entry for `address` (any server pid): its backend closed."""
        for key in [k for k in self._mine if k.split("#")[0] == address]:
            del self._mine[key]
        with contextlib.suppress(OSError):
            if self._mine and self._trusted():
                self._write()
            else:
                self.path.unlink()

    def others(self, address: str) -> tuple[int, int]:
        """(connections, processes) other cachetop processes on this host hold to `address`."""
        now = time.monotonic()
        if now - self._read_at >= self.READ_EVERY_S:
            self._read_at = now
            self._others = self._read()
        return self._others.get(address, (0, 0))

    def _read(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        if not self._trusted():
            return out
        try:
            paths = list(self.directory.glob("*.json"))
        except OSError:
            return out
        for path in paths:
            if path == self.path:
                continue
            try:
                data = json.loads(path.read_text())
                pid = int(data["pid"])
                instances = dict(data["instances"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if not _alive(pid):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            for address, n in instances.items():
                conns, procs = out.get(str(address), (0, 0))
                out[str(address)] = (conns + max(0, int(n)), procs + 1)
        return out


_REGISTRY: ViewerRegistry | None = None


def registry() -> ViewerRegistry:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = ViewerRegistry()
    return _REGISTRY


# --- this process's own sockets, for servers that cannot name a client (memcached) --------------

_OWN_ADDRESSES: set[str] = set()


def _address(sockname: object) -> str | None:
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = sockname[0], sockname[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return None


def note_own(sockname: object) -> None:
    """A connection of this process (its local address as the server sees it on loopback or a
    flat network), so `stats conns` rows can be marked as cachetop's."""
    address = _address(sockname)
    if address is not None:
        _OWN_ADDRESSES.add(address)


def forget_own(sockname: object) -> None:
    address = _address(sockname)
    if address is not None:
        _OWN_ADDRESSES.discard(address)


def is_own_address(address: str) -> bool:
    return address in _OWN_ADDRESSES

"""Idle-item eviction on memcached: every item idle for at least N seconds, from the LRU crawler.

`lru_crawler metadump all` lists every item of a server with its last access (`la`, the server's
Unix time), from a background thread of the server: complete (so the count is exact), and it moves
neither the LRU nor get_hits/get_misses. An item is idle when the server's own clock (`stats` time,
so a skewed client clock does not matter) minus its `la` is at least the threshold. Each server of
the pool is listed on its own and its idle items are removed on that server (`md <key>`, or
`md <key> I` to invalidate), whichever server the pool would hash them to today.

Memcached refreshes an item's last access on a read at most once a minute (ITEM_UPDATE_INTERVAL,
60 s), so an item read within the last minute may still show its previous access: thresholds under a
few minutes are approximate for items that are read but not written. As on Redis, an item read
between the listing and its removal is still removed; the counts stay exact (the server's replies).
"""

from __future__ import annotations

import fnmatch
import socket
from typing import Any

from pymemcache.exceptions import MemcacheError

from cachetop.actions.evict import EvictResult
from cachetop.actions.memcached_evict import MemcachedEvictor
from cachetop.actions.redis_nodes import ActionError
from cachetop.analysis.keyspace.memcached_walk import parse_metadump_line
from cachetop.engine.targets import Target

BUSY_RETRIES = 50  # the crawler serves one dump at a time: wait for another's (0.1 s apart)
MAX_LINE = 1 << 16


def _lines(stream: Any) -> Any:
    while True:
        line = stream.readline(MAX_LINE)
        if not line:
            raise ActionError("the server closed the connection mid-listing")
        yield line


class MemcachedIdleEvictor(MemcachedEvictor):
    """Like MemcachedEvictor, but the keys are every item of each server idle for idle_over_s
    seconds or more (and matching a glob, compared to the raw key as a shell glob)."""

    def __init__(self, targets: list[Target], *, idle_over_s: int, pattern: bytes = b"*", **kw: Any) -> None:
        super().__init__(targets, **kw)
        if any(t.tls for t in targets):
            raise ActionError(
                "idle eviction lists items over a plain connection; TLS memcached is not supported"
            )
        self.idle_over_s = idle_over_s
        self.pattern = pattern

    def run_idle(self, *, dry_run: bool) -> EvictResult:
        result, checked = self._over_pool(
            dry_run, lambda pool, result: self._each_server(pool, result, dry_run)
        )
        if checked:
            self.progress(result)
        return result

    def _each_server(self, pool: Any, result: EvictResult, dry_run: bool) -> None:
        for target in self.targets:
            if self.cancel.is_set():
                result.cancelled = True
                break
            if not self._server(pool, target, result, dry_run):
                break

    def _server(self, pool: Any, target: Target, result: EvictResult, dry_run: bool) -> bool:
        """Lists one server's idle items and removes them there; False when the run must stop."""
        node = target.address
        result.start_node(node)
        in_flight = 0
        try:
            idle = self.idle_items(target)
            result.matched += len(idle)
            result.examples.extend(idle[: max(0, 5 - len(result.examples))])
            client: Any = pool.clients.get(node) or pool.clients.get(f"{target.host}:{target.port}")
            for key in [] if dry_run else idle:
                self.budget.take(1)
                if self.cancel.is_set():
                    result.cancelled = True
                    return False
                in_flight = 1
                command = b"md " + key + (b" I" if self.mode == "invalidate" else b"")
                if bytes(client.raw_command(command, b"\r\n")).startswith(b"HD"):
                    result.add_evicted(node, 1)
                in_flight = 0
                self.progress(result)
            result.finish_node(node)
            return True
        except (MemcacheError, OSError, ActionError) as exc:
            result.fail_node(node, f"memcached://{node}: {type(exc).__name__}: {str(exc)[:160]}", in_flight)
            return False

    def idle_items(self, target: Target) -> list[bytes]:
        """Every key on `target` idle for at least idle_over_s and matching the glob, each once."""
        with socket.create_connection((target.host, target.port), self.timeout) as sock:
            stream = sock.makefile("rb")
            lines = _lines(stream)
            sock.sendall(b"stats\r\n")
            now = None
            for line in lines:
                if line.startswith(b"END"):
                    break
                parts = line.split()
                if len(parts) == 3 and parts[1] == b"time":
                    now = int(parts[2])
            if now is None:
                raise ActionError("`stats` gave no server time")
            first = self._start_dump(sock, lines)
            found: dict[bytes, None] = {}
            line = first
            while not line.startswith(b"END"):
                if line.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
                    text = line.decode("ascii", "replace").strip()[:120]
                    raise ActionError(f"lru_crawler metadump: {text} (the LRU crawler must be enabled)")
                item = parse_metadump_line(line)
                if item is not None:
                    key, _exp, last_access, _cls, _size = item
                    if now - last_access >= self.idle_over_s and fnmatch.fnmatchcase(key, self.pattern):
                        found[key] = None
                line = next(lines)
            return list(found)

    def _start_dump(self, sock: socket.socket, lines: Any) -> bytes:
        for _ in range(BUSY_RETRIES):
            sock.sendall(b"lru_crawler metadump all\r\n")
            first: bytes = next(lines)
            if not first.startswith(b"BUSY"):
                return first
            if self.cancel.wait(0.1):
                raise ActionError("cancelled while the LRU crawler was busy")
        raise ActionError("the LRU crawler stayed busy with another dump: try again later")

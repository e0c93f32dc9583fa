"""Evict keys from a memcached pool, addressed the way the application addresses it.

A pool is a pymemcache HashClient over the same servers (rendezvous hashing on "host:port"), so
the key is removed from the server the application reads it from. Keys are hashed as text, as
applications pass them. Two modes: `delete`, or `invalidate` (`md <key> I`: the item is marked
stale and its CAS bumped; the next reader gets it with the W flag and refills it, so a hot key
is refreshed without a stampede). A dry run asks `me <key>`, which moves no hit/miss counter.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from pymemcache.client.hash import HashClient
from pymemcache.exceptions import MemcacheError

from cachetop.actions.budget import RateBudget
from cachetop.actions.evict import DEFAULT_RATE, EvictResult, ProgressFn
from cachetop.actions.redis_nodes import ActionError
from cachetop.backends.capped_socket import CappedSocketModule
from cachetop.engine.targets import Target
from cachetop.util.safe_text import display_key

MODES = ("delete", "invalidate")
MAX_KEY_BYTES = 250
_BAD_KEY = re.compile(rb"[\x00-\x20\x7f]")


def check_key(key: bytes) -> str:
    """The key as the text applications hash, or ActionError naming the (escaped) key."""
    if not key or len(key) > MAX_KEY_BYTES or _BAD_KEY.search(key):
        raise ActionError(
            f"{display_key(key, 60)} is not a memcached key (1 to 250 bytes, no spaces or control characters)"
        )
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        raise ActionError(
            f"{display_key(key, 60)} is not UTF-8 text, so it cannot be hashed to a server"
        ) from None


def pool_client(targets: Sequence[Target], timeout: float) -> HashClient:
    return HashClient(
        [(t.host, t.port) for t in targets],
        connect_timeout=timeout,
        timeout=timeout,
        allow_unicode_keys=True,
        retry_attempts=0,
        ignore_exc=False,
        socket_module=CappedSocketModule(),  # no reply may grow us without bound (capped_socket.py)
    )


def server_of(pool: HashClient, key: str) -> str:
    """The "host:port" the pool (and so the application) sends this key to."""
    node = pool.hasher.get_node(key)
    if node is None:
        raise ActionError("no memcached server is left in the pool")
    return str(node)


class MemcachedEvictor:
    def __init__(
        self,
        targets: Sequence[Target],
        *,
        mode: str = "delete",
        timeout: float = 5.0,
        rate: float = DEFAULT_RATE,
        cancel: threading.Event | None = None,
        progress: ProgressFn | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if not targets:
            raise ValueError("a pool needs at least one server")
        self.targets = list(targets)
        self.mode = mode
        self.timeout = timeout
        self.cancel = cancel or threading.Event()
        self.budget = RateBudget(rate, clock=clock, wait=self.cancel.wait)
        self.progress = progress or (lambda _r: None)
        self.clock = clock

    def run(self, keys: Sequence[bytes], *, dry_run: bool) -> EvictResult:
        names = [check_key(k) for k in dict.fromkeys(keys)]
        return self._over_pool(dry_run, lambda pool, result: self._each_key(pool, result, names, dry_run))[0]

    def _over_pool(
        self, dry_run: bool, work: Callable[[HashClient, EvictResult], None]
    ) -> tuple[EvictResult, bool]:
        """The frame of a run: every server checked before `work` touches a key, then the pool closed
        and the time and totals settled whatever happens. Also says whether the check passed."""
        result = EvictResult(dry_run=dry_run)
        result.set_nodes(t.address for t in self.targets)
        start = self.clock()
        pool = pool_client(self.targets, self.timeout)
        try:
            if not self._preflight(pool, result):
                return result, False
            work(pool, result)
        except KeyboardInterrupt:  # a second signal: stopped mid-key, so the run is cancelled
            result.cancelled = True
            raise
        finally:
            pool.close()
            result.elapsed_s = self.clock() - start
            result.settle()
        return result, True

    def _each_key(self, pool: HashClient, result: EvictResult, names: list[str], dry_run: bool) -> None:
        """Each named key removed from the server the pool hashes it to (only counted in a dry run)."""
        for name in names:
            if self.cancel.is_set():
                result.cancelled = True
                break
            node = server_of(pool, name)
            client: Any = pool.clients[node]
            result.start_node(node)
            in_flight = 0
            try:
                present = client.raw_command(b"me " + name.encode(), b"\r\n").startswith(b"ME ")
                if present:
                    result.matched += 1
                    if len(result.examples) < 5:
                        result.examples.append(name.encode())
                if dry_run or not present:
                    continue
                self.budget.take(1)
                if self.cancel.is_set():
                    result.cancelled = True
                    break
                in_flight = 1
                if self._remove(client, name):
                    result.add_evicted(node, 1)
                in_flight = 0
            except (MemcacheError, OSError) as exc:
                error = f"memcached://{node}: {type(exc).__name__}: {str(exc)[:120]}"
                result.fail_node(node, error, in_flight)
                break
            self.progress(result)

    def _preflight(self, pool: HashClient, result: EvictResult) -> bool:
        """Every server of the pool answers `version` before the first key is touched, so a dead
        server stops the evict before anything is removed (its keys could not be reached)."""
        for target in self.targets:
            client: Any = pool.clients.get(target.address) or pool.clients.get(f"{target.host}:{target.port}")
            try:
                if client is None:
                    raise ActionError("not in the pool")
                client.version()
            except (MemcacheError, OSError, ActionError) as exc:
                result.fail_node(
                    target.address,
                    f"memcached://{target.address}: {type(exc).__name__}: {str(exc)[:120]} "
                    "(checked before evicting: nothing was removed)",
                )
                return False
        return True

    def _remove(self, client: Any, name: str) -> bool:
        if self.mode == "delete":
            return bool(client.delete(name, noreply=False))
        reply = client.raw_command(b"md " + name.encode() + b" I", b"\r\n")
        return bytes(reply).startswith(b"HD")

"""Warm a Redis/Valkey instance from a Warmer plugin, stampede-safe and within a rate budget.

Per batch of planned keys, two pipelined round trips:
  1. `SET <lock> <token> NX PX <lock_ttl>` and `MEMORY USAGE <key> SAMPLES 0` for each key: the
     lock says whether this warmer may fetch it, MEMORY USAGE whether it is already there (it
     does not count as a keyspace hit or miss, so warming leaves the hit ratio alone);
  2. after fetching the keys it owns and that are missing: `SET <key> <value> PX <ttl> NX` (NX: a
     value the application wrote meanwhile wins) and `DEL <lock>`.
A key is fetched only by the warmer holding its lock, and only when it is missing, so two
warmers (or two cachetop processes) fetch each key once. A lock outlives a crashed warmer by
at most lock_ttl. Cluster mode is not supported for warming yet (keys and locks may live on
different masters); it is refused with a clear message.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from cachetop.actions.budget import RateBudget
from cachetop.actions.redis_nodes import ActionError, connect, discover_nodes, error_text
from cachetop.config import InstanceConfig
from cachetop.plugins import Warmer, WarmItem
from cachetop.safe_text import display_key

DEFAULT_RATE = 5_000  # keys written per second; 0 = no limit
DEFAULT_BATCH = 200
DEFAULT_LOCK_TTL_S = 30.0
LOCK_PREFIX = b"cachetop:warm:lock:"
CLIENT_NAME = "cachetop-warm"
log = logging.getLogger(__name__)


@dataclass(slots=True)
class WarmResult:
    dry_run: bool
    planned: int = 0  # keys the strategy named
    written: int = 0
    present: int = 0  # already in the cache: not fetched, not written
    locked: int = 0  # another warmer held the lock: that one fetches it
    fetched: int = 0  # fetch() calls made by this warmer
    empty: int = 0  # fetch() returned None
    failed: int = 0  # fetch() raised
    cancelled: bool = False
    error: str | None = None  # first failure, for the person
    total: int | None = None  # planned keys, when the strategy knows up front
    elapsed_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "written": self.written,
            "present": self.present,
            "locked": self.locked,
            "fetched": self.fetched,
            "empty": self.empty,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "dry_run": self.dry_run,
        }


def warm_summary(result: WarmResult, instance: str) -> str:
    name = display_key(instance, 60)
    if result.dry_run:
        return (
            f"would warm {result.planned - result.present:,} keys on {name} "
            f"({result.planned:,} planned, {result.present:,} already there)"
        )
    text = (
        f"warmed {result.written:,} keys on {name}: {result.planned:,} planned, {result.present:,} "
        f"already there, {result.locked:,} left to another warmer, {result.fetched:,} fetched"
    )
    if result.empty or result.failed:
        text += f", {result.empty:,} with no value, {result.failed:,} failed"
    if result.cancelled:
        text = "cancelled: " + text
    if result.error:
        text += f" (first error: {result.error})"
    return text


def _batches(items: Iterable[WarmItem], size: int) -> Iterator[list[WarmItem]]:
    batch: list[WarmItem] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


class RedisWarmer:
    def __init__(
        self,
        inst: InstanceConfig,
        warmer: Warmer,
        *,
        timeout: float = 5.0,
        rate: float = DEFAULT_RATE,
        batch: int = DEFAULT_BATCH,
        lock_ttl_s: float = DEFAULT_LOCK_TTL_S,
        default_ttl: float | None = None,
        overwrite: bool = False,
        cancel: threading.Event | None = None,
        progress: Callable[[WarmResult], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inst = inst
        self.warmer = warmer
        self.timeout = timeout
        self.cancel = cancel or threading.Event()
        self.budget = RateBudget(rate, clock=clock, wait=self.cancel.wait)
        self.batch = max(1, batch)
        self.lock_ms = max(1, int(lock_ttl_s * 1000))
        self.default_ttl = default_ttl
        self.overwrite = overwrite
        self.progress = progress or (lambda _r: None)
        self.clock = clock
        self.token = os.urandom(8).hex().encode()

    def run(self, *, dry_run: bool) -> WarmResult:
        result = WarmResult(dry_run=dry_run, total=getattr(self.warmer, "total", None))
        nodes = discover_nodes(self.inst, self.timeout, CLIENT_NAME)
        if nodes[0].slots:
            raise ActionError(
                f"{self.inst.target.redacted_url} is a cluster: warming supports a single instance "
                "for now (point it at a standalone Redis/Valkey)"
            )
        start = self.clock()
        client = connect(self.inst, self.timeout, CLIENT_NAME)
        try:
            for batch in _batches(self.warmer.plan(), self.batch):
                if self.cancel.is_set():
                    result.cancelled = True
                    break
                self._batch(client, batch, result)
                self.progress(result)
        except redis.RedisError as exc:
            result.error = error_text(self.inst, exc)
        except Exception as exc:  # the strategy's plan() failed: say so, keep what was written
            log.debug("warm strategy failed", exc_info=True)
            result.error = (
                f"strategy {getattr(self.warmer, 'name', '?')}: {type(exc).__name__}: {str(exc)[:160]}"
            )
        finally:
            client.close()
            result.elapsed_s = self.clock() - start
        return result

    def _batch(self, client: Any, batch: list[WarmItem], result: WarmResult) -> None:
        result.planned += len(batch)
        pipe = client.pipeline(transaction=False)
        for item in batch:
            if not result.dry_run:
                pipe.set(LOCK_PREFIX + item.key, self.token, nx=True, px=self.lock_ms)
            pipe.execute_command("MEMORY", "USAGE", item.key, "SAMPLES", "0")
        replies = pipe.execute()
        if result.dry_run:
            result.present += sum(1 for size in replies if size is not None)
            return
        writes: list[tuple[WarmItem, bytes]] = []
        owned: list[bytes] = []
        for i, item in enumerate(batch):
            got_lock, size = replies[2 * i], replies[2 * i + 1]
            if not got_lock:
                result.locked += 1
                continue
            owned.append(LOCK_PREFIX + item.key)
            if size is not None and not self.overwrite:
                result.present += 1
                continue
            value = item.value if item.value is not None else self._fetch(item, result)
            if value is not None:
                writes.append((item, _as_bytes(value)))
        self.budget.take(len(writes))
        pipe = client.pipeline(transaction=False)
        for item, value in writes:
            ttl = item.ttl if item.ttl is not None else self.default_ttl
            px = max(1, int(ttl * 1000)) if ttl else None
            pipe.set(item.key, value, px=px, nx=not self.overwrite)
        if owned:
            pipe.delete(*owned)
        replies = pipe.execute()
        result.written += sum(1 for r in replies[: len(writes)] if r)

    def _fetch(self, item: WarmItem, result: WarmResult) -> bytes | str | None:
        result.fetched += 1
        try:
            value = self.warmer.fetch(item)
        except Exception as exc:  # a loader's failure skips its key; the run goes on
            result.failed += 1
            if result.error is None:
                result.error = f"fetch {display_key(item.key, 60)}: {type(exc).__name__}: {str(exc)[:120]}"
            return None
        if value is None:
            result.empty += 1
        return value

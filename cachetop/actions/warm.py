"""Warm a Redis/Valkey instance from a Warmer plugin, stampede-safe and within a rate budget.

Per batch of planned keys, two pipelined round trips:
  1. `SET <lock> <token> NX PX <lock_ttl>` and `MEMORY USAGE <key> SAMPLES 0` for each key: the
     lock says whether this warmer may fetch it, MEMORY USAGE whether it is already there (it
     does not count as a keyspace hit or miss, so warming leaves the hit ratio alone);
  2. after fetching the keys it owns and that are missing: `SET <key> <value> PX <ttl> NX` (NX: a
     value the application wrote meanwhile wins) and `DEL <lock>`.
A key is fetched only by the warmer holding its lock, and only when it is missing, so two
warmers (or two cachetop processes) fetch each key once. Locks are always released: whatever a
strategy returns or raises, the locks of a batch are dropped in a `finally`, and each carries a
PX expiry (lock_ttl, at most MAX_LOCK_TTL_S) so even a SIGKILL leaves none for longer than that.
What a strategy gives is checked before it is used: a key must be non-empty bytes, a TTL finite
and within TTL bounds, a value bytes or str of at most MAX_VALUE_BYTES; anything else skips that
key, is counted as failed and named in one line. Cluster mode is not supported for warming yet
(keys and locks may live on different masters); it is refused with a clear message.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from cachetop.actions.budget import RateBudget
from cachetop.actions.counted_conn import counted_connect, counted_discover
from cachetop.actions.own_report import NOT_REPORTED, ActionOwnReport, count_pipeline
from cachetop.actions.redis_nodes import ActionError, error_text
from cachetop.engine.config import InstanceConfig
from cachetop.plugins import Warmer, WarmItem
from cachetop.util.safe_text import clip_message, display_key

DEFAULT_RATE = 5_000  # keys written per second; 0 = no limit
DEFAULT_BATCH = 200
DEFAULT_LOCK_TTL_S = 30.0
LOCK_PREFIX = b"cachetop:warm:lock:"
CLIENT_NAME = "cachetop-warm"
MIN_TTL_S, MAX_TTL_S = 0.001, 10 * 365 * 86400.0  # a key's TTL: 1 ms to 10 years
MIN_LOCK_TTL_S, MAX_LOCK_TTL_S = 0.1, 3600.0  # a lock outlives a killed warmer by at most an hour
MAX_VALUE_BYTES = 64 * 1024 * 1024  # no cache value is this big; a batch of them must fit in memory
log = logging.getLogger(__name__)


def check_ttl(seconds: object, what: str, low: float = MIN_TTL_S, high: float = MAX_TTL_S) -> float:
    """A TTL in seconds that Redis can take, or ValueError with one line saying what is allowed."""
    number = seconds if isinstance(seconds, int | float) and not isinstance(seconds, bool) else None
    if number is None or not math.isfinite(number) or not low <= number <= high:
        raise ValueError(
            f"{what}: {seconds!r} is not a usable TTL (allowed: a finite number of seconds from "
            f"{low:g} to {high:,.0f}, e.g. 3600 or 1h)"
        )
    return float(number)


def check_value(value: object) -> bytes | None:
    """What a strategy's fetch() gave, as bytes (None: skip the key), or ValueError saying why
    not. The type is checked before any conversion: bytes(10**12) would allocate a terabyte."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"is a {type(value).__name__}, expected bytes, str or None")
    size = value.nbytes if isinstance(value, memoryview) else len(value)
    if size > MAX_VALUE_BYTES:
        raise ValueError(f"is {size:,} bytes, more than the {MAX_VALUE_BYTES:,} a value may have")
    return bytes(value)


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
        own: ActionOwnReport | None = None,
    ) -> None:
        self.inst = inst
        self.own: ActionOwnReport = own or NOT_REPORTED  # `cachetop warm`: no poller beside it
        self.warmer = warmer
        self.timeout = timeout
        self.cancel = cancel or threading.Event()
        self.budget = RateBudget(rate, clock=clock, wait=self.cancel.wait)
        self.batch = max(1, batch)
        lock_s = check_ttl(lock_ttl_s, "lock ttl", MIN_LOCK_TTL_S, MAX_LOCK_TTL_S)
        self.lock_ms = max(1, int(lock_s * 1000))
        self.default_ttl = None if default_ttl is None else check_ttl(default_ttl, "ttl")
        self.overwrite = overwrite
        self.progress = progress or (lambda _r: None)
        self.clock = clock
        self.token = os.urandom(8).hex().encode()

    def run(self, *, dry_run: bool) -> WarmResult:
        result = WarmResult(dry_run=dry_run, total=getattr(self.warmer, "total", None))
        nodes = counted_discover(self.inst, self.timeout, CLIENT_NAME, self.own)
        if nodes[0].slots:
            raise ActionError(
                f"{self.inst.target.redacted_url} is a cluster: warming supports a single instance "
                "for now (point it at a standalone Redis/Valkey)"
            )
        start = self.clock()
        client = counted_connect(self.inst, self.timeout, CLIENT_NAME, self.own)
        try:
            for batch in _batches(self.warmer.plan(), self.batch):
                if self.cancel.is_set():
                    result.cancelled = True
                    break
                self._batch(client, batch, result)
                self.progress(result)
        except redis.RedisError as exc:
            result.error = error_text(self.inst, exc)
        except (Exception, SystemExit) as exc:  # plan() failed (or called exit()): keep what was written
            log.debug("warm strategy failed", exc_info=True)
            name = getattr(self.warmer, "name", "?")
            result.error = f"strategy {name}: {type(exc).__name__}: {clip_message(str(exc), 160)}"
        finally:
            client.close()
            self.own.opened(-1)
            result.elapsed_s = self.clock() - start
        return result

    def _batch(self, client: Any, batch: list[WarmItem], result: WarmResult) -> None:
        result.planned += len(batch)
        batch = [item for item in batch if self._usable(item, result)]
        if not batch:
            return
        pipe = client.pipeline(transaction=False)
        for item in batch:
            if not result.dry_run:
                pipe.set(LOCK_PREFIX + item.key, self.token, nx=True, px=self.lock_ms)
            pipe.execute_command("MEMORY", "USAGE", item.key, "SAMPLES", "0")
        with self.own.sending() as count:
            count_pipeline(pipe, count)
            replies = pipe.execute()
        if result.dry_run:
            result.present += sum(1 for size in replies if size is not None)
            return
        # Every lock this batch took, before anything can fail: the finally releases them all.
        owned = [LOCK_PREFIX + item.key for i, item in enumerate(batch) if replies[2 * i]]
        try:
            writes: list[tuple[WarmItem, bytes]] = []
            for i, item in enumerate(batch):
                got_lock, size = replies[2 * i], replies[2 * i + 1]
                if not got_lock:
                    result.locked += 1
                    continue
                if size is not None and not self.overwrite:
                    result.present += 1
                    continue
                given = check_value(item.value)  # checked in _usable: cannot fail here
                value = given if given is not None else self._fetch(item, result)
                if value is not None:
                    writes.append((item, value))
            self.budget.take(len(writes))
            pipe = client.pipeline(transaction=False)
            for item, value in writes:
                ttl = item.ttl if item.ttl is not None else self.default_ttl
                px = max(1, int(ttl * 1000)) if ttl else None
                pipe.set(item.key, value, px=px, nx=not self.overwrite)
            if owned:
                pipe.delete(*owned)
            with self.own.sending() as count:
                count_pipeline(pipe, count)
                replies = pipe.execute()
            owned = []  # released with the writes
            result.written += sum(1 for r in replies[: len(writes)] if r)
        finally:
            if owned:  # the batch ended early (an error, a second Ctrl-C): drop its locks anyway
                with contextlib.suppress(redis.RedisError), self.own.sending() as count:
                    count("del", 1)  # (the connection is gone: PX cleans up)
                    client.delete(*owned)

    def _usable(self, item: object, result: WarmResult) -> bool:
        """A planned item cachetop can act on; anything else is counted failed and named."""
        problem = None
        key = getattr(item, "key", None)
        if not isinstance(item, WarmItem):
            problem = f"planned a {type(item).__name__}, expected a WarmItem"
        elif not isinstance(key, bytes) or not key:
            problem = f"planned a key {display_key(str(key), 40)} that is not non-empty bytes"
        else:
            try:
                if item.ttl is not None:
                    check_ttl(item.ttl, f"the ttl of {display_key(key, 60)}")
            except ValueError as exc:
                problem = str(exc)
            try:
                if problem is None:
                    check_value(item.value)
            except ValueError as exc:
                problem = f"the value of {display_key(key, 60)} {exc}"
        if problem is None:
            return True
        result.failed += 1
        if result.error is None:
            result.error = f"strategy {getattr(self.warmer, 'name', '?')}: {problem}"
        return False

    def _fetch(self, item: WarmItem, result: WarmResult) -> bytes | None:
        result.fetched += 1
        where = f"fetch {display_key(item.key, 60)}"
        try:
            value = check_value(self.warmer.fetch(item))
        except ValueError as exc:  # a value cachetop cannot write: skip the key, say what it was
            result.failed += 1
            if result.error is None:
                result.error = f"{where}: the strategy's value {exc}"
            return None
        except (Exception, SystemExit) as exc:  # a loader's failure skips its key; the run goes on
            result.failed += 1
            if result.error is None:
                result.error = f"{where}: {type(exc).__name__}: {clip_message(str(exc), 120)}"
            return None
        if value is None:
            result.empty += 1
        return value

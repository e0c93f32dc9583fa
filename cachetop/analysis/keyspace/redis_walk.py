"""The Redis/Valkey keyspace walk: count every name with SCAN, then ask the per-key calls of a
stratified sample, then read a few string values for the compression advisor.

Phases, on one connection (redis_conn.py), paced by the evict path's RateBudget: every key a SCAN
returns and every per-key call is one operation of the budget.
1. SCAN cursor COUNT c over everything (or until `max_scan` names, or a cancel): each name is
   counted under its prefix and offered to that prefix's reservoir (sample.py).
2. For the sample shared out over the prefixes (sample.allocate), one pipeline per batch of keys:
   MEMORY USAGE, PTTL, TYPE, OBJECT ENCODING, and OBJECT IDLETIME under an LRU (or no-eviction)
   policy or OBJECT FREQ under an LFU one (each errors under the other policy); then MEMORY USAGE
   key SAMPLES 0 for the collections the first call sized from 5 elements, unless that estimate
   is over 1 MiB (SAMPLES 0 walks every element of a collection: a big one would block the server).
3. Up to `values_per_prefix` string values per prefix with GET, on a connection with
   CLIENT NO-TOUCH on where the server has it (Redis/Valkey 7.2 and later), so neither LRU idle
   time nor LFU counters move. Older servers have no such switch: the report says how many keys
   were read, since those look freshly used to the eviction policy.

The walk is resumable: the cursor and what was counted live on the KeyspaceWalk object. A cancel
between batches ends the phase in hand (a cancelled scan goes on to sample what it saw, so a
stopped walk still answers, with wider intervals), and calling run() again goes on counting from
the cursor, then samples afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import hiredis

from cachetop.actions.budget import RateBudget
from cachetop.analysis.compress import measure_compression
from cachetop.analysis.keyspace.cliffs import Expiry, find_cliffs
from cachetop.analysis.keyspace.estimate import KeyFacts, estimate_prefix
from cachetop.analysis.keyspace.redis_conn import KeyspaceConnection, KeyspaceError, OwnCounts
from cachetop.analysis.keyspace.report import InstanceReport, KeyspaceProgress
from cachetop.analysis.keyspace.sample import NameCounter, allocate
from cachetop.engine.config import InstanceConfig
from cachetop.util.aio import OwnTrafficGate

SCAN_COUNT_LIMITED = 200  # names per SCAN under a budget: about 0.15 ms of server time each
SCAN_COUNT_FREE = 1000
# Sampled keys per pipeline (5 commands each). Small enough that what another cachetop process
# may not see claimed in our client name before the connection closes is one such batch.
KEYS_PER_BATCH = 50
VALUES_PER_BATCH = 50
MAX_VALUE_BYTES = 1 << 20  # a value larger than this (by MEMORY USAGE) is not read
CALLS_PER_KEY = 5
# Encodings MEMORY USAGE sizes from a sample of elements; the compact ones (strings, listpack,
# ziplist, intset) it measures whole whatever SAMPLES says.
SAMPLED_ENCODINGS = frozenset({"hashtable", "skiplist", "quicklist", "linkedlist", "stream"})
EXACT_MAX_BYTES = 1 << 20


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) else None


def _text(x: Any) -> str | None:
    if isinstance(x, bytes):
        return x.decode("ascii", "replace")
    return None


def _version(info: bytes) -> tuple[int, ...]:
    for line in info.splitlines():
        if line.startswith(b"redis_version:"):
            try:
                return tuple(int(p) for p in line.split(b":", 1)[1].strip().split(b".")[:3])
            except ValueError:
                return ()
    return ()


def _field(info: bytes, name: bytes) -> str:
    for line in info.splitlines():
        if line.startswith(name + b":"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
    return ""


class KeyspaceWalk:
    def __init__(
        self,
        inst: InstanceConfig,
        *,
        sample: int = 10_000,
        rate: float = 20_000,
        values_per_prefix: int = 200,
        max_scan: int | None = None,
        seed: int | None = None,
        timeout: float = 5.0,
        progress: Callable[[KeyspaceProgress], None] | None = None,
        own: OwnCounts | None = None,
        gate: OwnTrafficGate | None = None,
        cancel: asyncio.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.inst = inst
        self.sample = sample
        self.values_per_prefix = values_per_prefix
        self.max_scan = max_scan
        self.progress = progress or (lambda _p: None)
        self.own = own or OwnCounts()
        self.cancel = cancel or asyncio.Event()
        self.clock, self.wall = clock, wall
        self.budget = RateBudget(rate, clock=clock, wait=lambda _s: None)
        self.scan_count = SCAN_COUNT_LIMITED if rate else SCAN_COUNT_FREE
        self.conn = KeyspaceConnection(inst, timeout, self.own, gate)
        self.counter = NameCounter(sample, seed=seed)
        self.cursor = 0
        self.scan_done = False
        self.dbsize: int | None = None
        self.facts: dict[bytes, list[KeyFacts]] = {}
        self.notes: list[str] = []
        self.lfu = False
        self.no_touch = False
        self.compression: dict[bytes, Any] = {}
        self.estimated_sizes = 0  # big collections left sized from sampled elements
        self.values_info: dict[str, Any] = {}
        self._started = clock()
        self._phase = "connecting"

    # --- pacing and progress ---------------------------------------------------------------

    async def _take(self, n: int) -> None:
        debt = self.budget.take(n)  # its wait is a no-op: the debt is slept off here, cancellably
        if debt > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancel.wait(), debt)

    def _tell(self, to_sample: int = 0) -> None:
        self.progress(
            KeyspaceProgress(
                keys_scanned=self.counter.counted,
                keys_total_hint=self.dbsize,
                keys_sampled=sum(len(v) for v in self.facts.values()),
                phase=self._phase,
                elapsed_s=self.clock() - self._started,
                keys_to_sample=to_sample,
            )
        )

    # --- the phases ------------------------------------------------------------------------

    async def run(self) -> InstanceReport:
        started_at = self.wall()
        self._started = self.clock()
        self.notes = []  # a resumed walk says what this run did
        self.estimated_sizes = 0
        error = None
        try:
            await self.conn.open()
            await self._hello()
            self._phase = "scanning"
            await self._scan()
            self.cancel.clear()  # a cancel ends the scan; the sample of what was seen still runs
            self._phase = "sampling"
            await self._sample()
            self._phase = "values"
            await self._values()
        except KeyspaceError as exc:
            error = str(exc)
        finally:
            await self.conn.close()
        self._phase = "done"
        self._tell()
        return self._report(started_at, error)

    async def _hello(self) -> None:
        server, memory, dbsize = await self.conn.batch([("INFO", "server"), ("INFO", "memory"), ("DBSIZE",)])
        if isinstance(server, hiredis.ReplyError) or isinstance(memory, hiredis.ReplyError):
            raise KeyspaceError(f"{self.inst.target.redacted_url}: INFO refused: {server}")
        self.dbsize = _int(dbsize)
        self.lfu = "lfu" in _field(memory, b"maxmemory_policy")
        self.no_touch = _version(server) >= (7, 2)
        self._tell()

    async def _scan(self) -> None:
        while not self.scan_done and not self.cancel.is_set():
            if self.max_scan is not None and self.counter.counted >= self.max_scan:
                break
            await self._take(self.scan_count)
            if self.cancel.is_set():
                break
            (reply,) = await self.conn.batch([("SCAN", self.cursor, "COUNT", self.scan_count)])
            if isinstance(reply, hiredis.ReplyError):
                raise KeyspaceError(f"{self.inst.target.redacted_url}: SCAN: {reply}")
            self.cursor = int(reply[0])
            self.counter.add(reply[1])
            self.scan_done = self.cursor == 0
            self._tell()

    def _chosen(self) -> list[tuple[bytes, bytes]]:
        strata = self.counter.strata
        alloc = allocate(
            {p: len(s.heap) for p, s in strata.items()},
            {p: s.counted for p, s in strata.items()},
            self.sample,
        )
        return [(p, k) for p, n in alloc.items() for k in strata[p].lowest(n)]

    async def _sample(self) -> None:
        chosen = self._chosen()
        self.facts = {p: [] for p in self.counter.strata}
        last = "OBJECT", "FREQ" if self.lfu else "IDLETIME"
        for start in range(0, len(chosen), KEYS_PER_BATCH):
            if self.cancel.is_set():
                self.notes.append("stopped while sampling: fewer keys were sampled than asked")
                break
            part = chosen[start : start + KEYS_PER_BATCH]
            await self._take(CALLS_PER_KEY * len(part))
            commands: list[tuple[Any, ...]] = []
            for _, key in part:
                commands += [
                    ("MEMORY", "USAGE", key),  # 5 sampled elements: exact but for big collections
                    ("PTTL", key),
                    ("TYPE", key),
                    ("OBJECT", "ENCODING", key),
                    (*last, key),
                ]
            replies = await self.conn.batch(commands, lookups=(CALLS_PER_KEY - 1) * len(part))
            now = self.wall()
            added = [
                self._add_facts(prefix, key, replies[i * CALLS_PER_KEY : (i + 1) * CALLS_PER_KEY], now)
                for i, (prefix, key) in enumerate(part)
            ]
            await self._size_collections([a for a in added if a is not None])
            self._tell(len(chosen))
        if self.estimated_sizes:
            n = self.estimated_sizes
            self.notes.append(
                f"{n:,} sampled collection{'s' if n != 1 else ''} over {EXACT_MAX_BYTES >> 20} MiB "
                f"{'were' if n != 1 else 'was'} sized from 5 of their elements (MEMORY USAGE SAMPLES 0 "
                "would walk every element, blocking the server meanwhile)"
            )

    async def _size_collections(self, added: list[tuple[bytes, int]]) -> None:
        """MEMORY USAGE SAMPLES 0 (exact) for the batch's collections (`added`: where _add_facts put
        each key's facts) that MEMORY USAGE sized from a sample of elements (hashtable, skiplist,
        quicklist, stream encodings), when that estimate is at most EXACT_MAX_BYTES: SAMPLES 0 walks
        every element, so a big one keeps its estimate."""
        todo = [
            (prefix, i, f)
            for prefix, i in added
            if (f := self.facts[prefix][i]).encoding in SAMPLED_ENCODINGS
        ]
        exact = [t for t in todo if t[2].bytes <= EXACT_MAX_BYTES]
        self.estimated_sizes += len(todo) - len(exact)
        if not exact:
            return
        await self._take(len(exact))
        replies = await self.conn.batch([("MEMORY", "USAGE", f.key, "SAMPLES", 0) for _, _, f in exact])
        for (prefix, i, f), size in zip(exact, replies, strict=True):
            if isinstance(size, int):
                self.facts[prefix][i] = replace(f, bytes=size)

    def _add_facts(
        self, prefix: bytes, key: bytes, replies: list[Any], now: float
    ) -> tuple[bytes, int] | None:
        """Adds the key's facts to its prefix's list; returns where (None: the key is gone)."""
        size, pttl, type_, encoding, last = replies
        # Every call after MEMORY USAGE is a key lookup: a hit when the key was there, else a miss.
        found = [
            isinstance(pttl, int) and pttl != -2,
            isinstance(type_, bytes) and type_ != b"none",
            encoding is not None and not isinstance(encoding, hiredis.ReplyError),
            last is not None and not isinstance(last, hiredis.ReplyError),
        ]
        self.own.hit_count += sum(found)
        self.own.miss_count += len(found) - sum(found)
        if not isinstance(size, int) or not all(found):
            return None  # gone (expired or deleted) during the walk: no longer in the population
        ttl_s = pttl / 1000.0 if pttl >= 0 else None
        facts = KeyFacts(
            key=key,
            bytes=size,
            type=_text(type_) or "?",
            encoding=_text(encoding),
            expires_at=now + ttl_s if ttl_s is not None else None,
            ttl_s=ttl_s,
            idle_s=None if self.lfu else float(last),
            freq=int(last) if self.lfu else None,
        )
        self.facts[prefix].append(facts)
        return prefix, len(self.facts[prefix]) - 1

    async def _values(self) -> None:
        if self.values_per_prefix <= 0:
            return
        todo: list[tuple[bytes, bytes]] = []
        skipped: dict[str, int] = {}
        too_big = 0
        for prefix, facts in self.facts.items():
            strings = []
            for f in facts:
                if f.type != "string":
                    skipped[f.type] = skipped.get(f.type, 0) + 1
                elif f.bytes > MAX_VALUE_BYTES:
                    too_big += 1
                else:
                    strings.append(f.key)
            todo += [(prefix, k) for k in strings[: self.values_per_prefix]]
        values: dict[bytes, list[bytes]] = {}
        if todo and self.no_touch:
            await self.conn.batch([("CLIENT", "NO-TOUCH", "on")])
        for start in range(0, len(todo), VALUES_PER_BATCH):
            if self.cancel.is_set():
                break
            part = todo[start : start + VALUES_PER_BATCH]
            await self._take(len(part))
            replies = await self.conn.batch([("GET", k) for _, k in part], lookups=len(part))
            for (prefix, _), value in zip(part, replies, strict=True):
                if isinstance(value, bytes):
                    self.own.hit_count += 1
                    values.setdefault(prefix, []).append(value)
                elif value is None:
                    self.own.miss_count += 1
                else:  # WRONGTYPE: the key became another type since; the lookup found it
                    self.own.hit_count += 1
            self._tell()
        self.compression = {}
        for prefix, sample_values in values.items():
            stats = await asyncio.to_thread(measure_compression, sample_values)
            if stats is not None:
                self.compression[prefix] = stats
        read = sum(len(v) for v in values.values())
        self.values_info = {
            "read": read,
            "no_touch": self.no_touch,
            "skipped_types": skipped,
            "skipped_too_big": too_big,
            "method": "GET under CLIENT NO-TOUCH" if self.no_touch else "GET",
        }
        if read and not self.no_touch:
            self.notes.append(
                f"this server has no CLIENT NO-TOUCH (Redis/Valkey before 7.2): the {read:,} keys "
                "whose values were read for the compression figures now look freshly used to LRU/LFU "
                "eviction (use --values 0 to read none)"
            )

    # --- the report --------------------------------------------------------------------------

    def _report(self, started_at: float, error: str | None) -> InstanceReport:
        complete = self.scan_done
        total = self.dbsize if not complete else None
        scanned = self.counter.counted
        estimates = []
        expiries: list[Expiry] = []
        for prefix, stratum in self.counter.strata.items():
            facts = self.facts.get(prefix, [])
            est = estimate_prefix(prefix, stratum.counted, scanned, total, facts)
            stats = self.compression.get(prefix)
            est.compress = stats.to_json(est.bytes.est, est.keys.est) if stats else None
            estimates.append(est)
            if facts:
                weight = est.keys.est / len(facts)
                expiries += [
                    Expiry(f.expires_at, prefix, weight, est.keys.est, len(facts))
                    for f in facts
                    if f.expires_at is not None
                ]
        notes = list(self.notes)
        if not complete and scanned:
            notes.insert(0, f"stopped after {scanned:,} names: key counts are scaled from the part walked")
        return InstanceReport(
            name=self.inst.name,
            kind=self.inst.target.kind,
            source="scan",
            keys_total=self.dbsize,
            keys_scanned=scanned,
            keys_sampled=sum(e.sampled for e in estimates),
            complete=complete,
            started_at=started_at,
            elapsed_s=self.clock() - self._started,
            prefixes=estimates,
            cliffs=find_cliffs(expiries, self.wall()),
            notes=notes,
            values=self.values_info,
            idle_source="freq" if self.lfu else "idletime",
            error=error,
            own_commands=sum(self.own.sent.values()),
        )

"""HistoryService: keeps the history of a running Monitor, predicts the next bucket, warms ahead.

    service = HistoryService(config, collectors)   # collectors: instance name -> HotKeyCollector
    unsubscribe = service.attach(monitor)          # a Source: every snapshot moves it on
    ...
    await service.stop()

Uses only what cachetop already collects: the hot-key collectors' finished one-second slots
and the snapshots' running totals. No connection, command or scan of its own (a scheduled
warm is an action, with its own connection, like `cachetop warm`; what it sends is reported to
the instance's poller as cachetop's own traffic: actions/own_report.py).

Only the process holding `history.lock` writes; another (a dashboard beside the daemon) keeps
no second history and reads the file instead (`writer` is False).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol

from cachetop.actions.own_report import WARM_AHEAD, thread_own_report
from cachetop.analysis.predict import Top
from cachetop.engine.config import Config
from cachetop.engine.source import Source
from cachetop.history.bucket import BucketRecord, OpenBucket, bucket_index
from cachetop.history.config import history_settings, key_separators, warm_settings
from cachetop.history.store import HistoryLock, HistoryStore
from cachetop.history.warm_ahead import plan_ahead
from cachetop.hotkeys.view import HotKeysView
from cachetop.metrics.topk import WindowedTopK
from cachetop.model import InstanceMetrics, Snapshot
from cachetop.util.aio import cancel_and_wait
from cachetop.util.safe_text import display_key

log = logging.getLogger("cachetop.history")
PREDICTED_TOPS = ("combined", "seasonal", "sequence", "naive")
LOCK_RETRY_S = 30.0
STOP_WAIT_S = 10.0  # at stop, how long the history file's last writes may take
CLOSE_WAIT_S = 1.0  # then how long stop waits for the worker to close it (it goes on after that)
STREAM_SOURCES = ("monitor", "watch")  # sources whose events history counts slot by slot


class SlotSource(Protocol):
    """What history reads from a hot-key collector: its per-slot key and prefix summaries."""

    keys: WindowedTopK
    prefixes: WindowedTopK
    clock: Callable[[], float]


class HistoryService:
    def __init__(
        self,
        config: Config,
        collectors: Mapping[str, SlotSource],
        *,
        clock: Callable[[], float] = time.time,
        on_notice: Callable[[str], None] | None = None,
        backend_of: Callable[[str], object | None] = lambda _name: None,
    ) -> None:
        self.config = config
        # The poller's backend of an instance: a scheduled warm reports what it sends there.
        self.backend_of = backend_of
        self.settings = history_settings(config)
        self.warm = warm_settings(config)
        self.collectors = collectors
        self.clock = clock
        self.on_notice = on_notice or (lambda line: log.info("%s", line))
        self.state_dir = Path(config.settings.state_dir)
        self.lead = min(self.warm.lead, self.settings.bucket / 2)
        self.k = self.warm.top
        self._lock: HistoryLock | None = None
        self.store: HistoryStore | None = None
        self.writer = False
        self._lock_due = 0.0  # wall clock: the next try at the lock, while another process holds it
        self._open: dict[str, dict[int, OpenBucket]] = {}
        self._slot_marks: dict[tuple[str, str], float] = {}
        self._totals: dict[str, tuple[float, Mapping[str, int]]] = {}
        self._closed: dict[str, int] = {}  # instance -> the last bucket closed
        self._predicted: dict[str, int] = {}  # instance -> the last bucket predicted
        self._warming: set[asyncio.Task[None]] = set()
        self._stopping = False  # set by stop(): a prediction finishing meanwhile warms nothing
        # The file is written and predictions are made on one worker thread, in order: an fsync
        # on a busy disk can take seconds, and the event loop must not wait for it (a stalled
        # loop reads MONITOR late, which moves keys into the wrong bucket).
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cachetop-history")
        self._pending: set[Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.warm_results: list[tuple[str, int, Any]] = []  # (instance, bucket, WarmResult), newest last

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._take_lock(first=True)

    def _take_lock(self, first: bool = False) -> None:
        """Becomes the writer if no other process is (at start, then every LOCK_RETRY_S: a
        daemon started beside a dashboard takes over the history when the dashboard quits)."""
        lock = HistoryLock(self.state_dir)
        if lock.held:
            self._lock, self.writer = lock, True
            if self.store is not None:
                self.store.close()
            self.store = HistoryStore(self.state_dir, self.settings, writable=True, clock=self.clock)
            if not first:
                self.on_notice("history: the process that kept it is gone; this one keeps it now")
            return
        problem = lock.problem
        lock.close()
        if self.store is None:
            self.store = HistoryStore(self.state_dir, self.settings, writable=False, clock=self.clock)
        if not first:
            return
        if problem:
            self.on_notice(f"history: not kept, the state dir refuses writes ({display_key(problem, 160)})")
        else:
            self.on_notice("history: another cachetop process (a daemon) keeps it here; this one reads it")

    def attach(self, source: Source) -> Callable[[], None]:
        unsubscribe: Callable[[], None] = source.subscribe(self.on_snapshot)
        return unsubscribe

    async def stop(self) -> None:
        # First: a prediction the worker finishes while we wait for it below hands its keys to
        # _warm_ahead on this loop, which must not start a warm the cancel here has missed.
        self._stopping = True
        await cancel_and_wait(list(self._warming))
        await asyncio.to_thread(self.flush, STOP_WAIT_S)
        # The file and the lock are closed on the worker, after what it is writing now (a
        # flush that timed out leaves it inside a transaction); what has not started is dropped.
        for future in list(self._pending):
            future.cancel()
        store, lock = self.store, self._lock

        def close() -> None:
            if store is not None:
                store.close()
            if lock is not None:  # released last: no other process writes while this one does
                lock.close()

        closed = self._io.submit(close)
        self._io.shutdown(wait=False)
        await asyncio.to_thread(wait, [closed], CLOSE_WAIT_S)

    def flush(self, timeout: float = STOP_WAIT_S) -> None:
        """Waits until what was handed to the worker (closed buckets, predictions) is done."""
        wait(list(self._pending), timeout)

    def _submit(self, job: Callable[[], Any]) -> Future[Any]:
        future = self._io.submit(job)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future

    def _say(self, line: str) -> None:
        """A notice from the worker thread, handed to the event loop (the dashboard shows it)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.on_notice, line)
        else:
            self.on_notice(line)

    # --- every snapshot -------------------------------------------------------------------------

    def on_snapshot(self, snapshot: Snapshot) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: a test feeding snapshots by hand
            self._loop = asyncio.get_running_loop()
        if not self.writer:
            if snapshot.time >= self._lock_due:
                self._lock_due = snapshot.time + LOCK_RETRY_S
                self._take_lock()
            if not self.writer:
                return
        now = snapshot.time
        closed: list[BucketRecord] = []
        for inst in snapshot.instances:
            self._take_slots(inst.name)
            self._take_totals(inst.name, snapshot, inst)
        present = {inst.name for inst in snapshot.instances}
        for name in list(self._open):  # also a node that left the fleet: its last bucket is kept
            closed.extend(self._close_finished(name, now))
            if name not in present and not self._open[name]:
                self._forget(name)
        if closed:  # every instance's bucket in one transaction: a fleet closes its hour at once
            self._save(closed)
        self._predict_all([i.name for i in snapshot.instances if self._has_keys(i.name)], now)

    def _has_keys(self, name: str) -> bool:
        """Prediction is about keys: instances with no hot-key source are only recorded."""
        if name in self.collectors:
            return True
        return any(b.ranking is not None for b in self._open.get(name, {}).values())

    def _bucket(self, name: str, index: int) -> OpenBucket | None:
        buckets = self._open.setdefault(name, {})
        if index not in buckets:
            if any(index < i for i in buckets) or index <= self._closed.get(name, -(2**62)):
                return None  # late data for a bucket already closed: dropped
            buckets[index] = OpenBucket(name, index, self.settings.bucket, self.settings.top)
        return buckets[index]

    def _take_slots(self, name: str) -> None:
        collector = self.collectors.get(name)
        if collector is None:
            return
        mono = collector.clock()
        offset = self.clock() - mono  # now, not the snapshot's time: slots are placed to the ms
        for what, topk in (("keys", collector.keys), ("prefixes", collector.prefixes)):
            mark = self._slot_marks.get((name, what), float("-inf"))
            for slot in topk.finished(mark, mono):
                middle = slot.start + topk.slot_s / 2 + offset
                bucket = self._bucket(name, bucket_index(middle, self.settings.bucket))
                if bucket is not None:
                    entries = slot.sketch.entries
                    if what == "keys":
                        bucket.add_slot(entries, {}, slot.covered_s)
                    else:
                        bucket.add_slot({}, entries, 0.0)
                mark = slot.start
            self._slot_marks[(name, what)] = mark

    def _take_totals(self, name: str, snapshot: Snapshot, inst: InstanceMetrics) -> None:
        counters = inst.counters or {}
        last = self._totals.get(name)
        self._totals[name] = (snapshot.time, dict(counters))
        if last is None or not counters:
            return
        seconds = snapshot.time - last[0]
        delta = {k: counters.get(k, 0) - last[1].get(k, 0) for k in counters}
        bucket = self._bucket(name, bucket_index(snapshot.time, self.settings.bucket))
        if bucket is not None:
            bucket.add_totals(delta, seconds, inst.metrics)
            view = inst.extras.get("hotkeys")
            if isinstance(view, HotKeysView) and view.source not in STREAM_SOURCES and view.keys:
                bucket.set_ranking(
                    ((k.key, k.count) for k in view.keys), ((p.pattern, p.count) for p in view.prefixes)
                )

    def _forget(self, name: str) -> None:
        for table in (self._open, self._totals, self._closed, self._predicted):
            table.pop(name, None)
        for what in ("keys", "prefixes"):
            self._slot_marks.pop((name, what), None)

    def _close_finished(self, name: str, now: float) -> list[BucketRecord]:
        grace = 1.25  # a collector slot (1 s) must have finished before its bucket closes
        closed = []
        for index in sorted(self._open.get(name, {})):
            if now < (index + 1) * self.settings.bucket + grace:
                break
            closed.append(self._open[name].pop(index).close())
            self._closed[name] = index
        return closed

    def _save(self, records: list[BucketRecord]) -> None:
        self._submit(lambda: self._write_closed(records))

    def _write_closed(self, records: list[BucketRecord]) -> None:
        """On the worker: the closed buckets in one transaction, then their predictions scored."""
        assert self.store is not None
        try:
            self.store.add_many(records)
            scored = self.store.score_predictions(records, self.k)
        except Exception as exc:  # a full or broken disk: history pauses, monitoring goes on
            self._say(f"history: {len(records)} bucket(s) not saved ({display_key(str(exc), 120)})")
            return
        for record, scores in zip(records, scored, strict=True):
            if scores:
                text = ", ".join(f"{p} {v:.2f}" for p, v in sorted(scores.items()))
                log.info(
                    "history %s bucket %d: precision@%d %s",
                    display_key(record.instance, 60),
                    record.index,
                    self.k,
                    text,
                )

    # --- predicting and warming ahead -----------------------------------------------------------

    def _due(self, name: str, now: float) -> tuple[int, Top | None, float] | None:
        """(the next bucket, the bucket being counted, the share of it seen) once, `lead` before
        the next bucket starts; None when no prediction is due. Cheap: runs on the event loop."""
        bucket = self.settings.bucket
        target = bucket_index(now + self.lead, bucket)
        if target <= bucket_index(now, bucket) or self._predicted.get(name, -1) >= target:
            return None
        self._predicted[name] = target
        current = self._open.get(name, {}).get(target - 1)
        if current is None or not (current.events or current.ranking):
            return target, None, 1.0
        keys, prefixes = current.peek() if current.events else current.ranking or ((), ())
        seen = (self._seen_until(name, now) - current.index * bucket) / bucket
        return target, Top(current.index, keys, prefixes), seen

    def _seen_until(self, name: str, now: float) -> float:
        """Wall time up to which the instance's hot keys are counted: the end of the last slot
        taken from its collector (`now` for sources without slots)."""
        collector = self.collectors.get(name)
        mark = self._slot_marks.get((name, "keys"))
        if collector is None or mark is None:
            return now
        return mark + collector.keys.slot_s + (self.clock() - collector.clock())

    def _predict_all(self, names: list[str], now: float) -> None:
        due = [(name, found) for name in names if (found := self._due(name, now)) is not None]
        if not due:
            return
        future = self._submit(lambda: self._predict(due, now))
        if self.warm.predict and self._loop is not None:
            loop = self._loop
            future.add_done_callback(lambda f: loop.call_soon_threadsafe(self._warm_ahead, f))

    def _predict(self, due: list[tuple[str, tuple[int, Top | None, float]]], now: float) -> list[Any]:
        """On the worker: each due instance's prediction (about 14 ms an instance with four seasons
        of hourly buckets), stored in one transaction; returns (name, bucket, keys to warm)."""
        assert self.store is not None
        separators = key_separators(self.config)
        made, rows = [], []
        for name, (target, current, seen) in due:
            try:
                plan = plan_ahead(
                    self.store,
                    name,
                    self.settings,
                    separators=separators,
                    top=self.k,
                    now=now,
                    current=current,
                    seen=seen,
                )
            except Exception as exc:
                self._say(
                    f"history: no prediction for {display_key(name, 60)} ({display_key(str(exc), 120)})"
                )
                continue
            prediction = plan.predictions[0]
            rows.append(
                (name, self.settings.bucket, target, {p: prediction.top(p, self.k) for p in PREDICTED_TOPS})
            )
            made.append((name, target, list(plan.keys) if plan.buckets_known else []))
        try:
            self.store.put_predictions(rows)
        except Exception as exc:
            self._say(f"history: predictions not saved ({display_key(str(exc), 120)})")
        return made

    def _warm_ahead(self, future: Future[Any]) -> None:
        """On the event loop, once predictions are made: a scheduled warm per instance."""
        if self._stopping or future.cancelled() or future.exception() is not None:
            return
        for name, target, keys in future.result():
            if keys:
                self._start_warm(name, target, keys)

    def _start_warm(self, name: str, target: int, keys: list[bytes]) -> None:
        inst = next((i for i in self.config.instances if i.name == name), None)
        if inst is None or inst.target.kind == "memcached":
            return
        from cachetop.history.warm_job import start_warm_task

        own = thread_own_report(self.backend_of(name), asyncio.get_running_loop(), WARM_AHEAD)
        task = start_warm_task(
            self.config, inst, self.warm, self.settings, keys, target, self.warm_results, own
        )
        self._warming.add(task)
        task.add_done_callback(self._warming.discard)


def start_history(
    config: Config,
    collectors: Mapping[str, SlotSource],
    on_notice: Callable[[str], None],
    backend_of: Callable[[str], object | None] = lambda _name: None,
) -> HistoryService | None:
    """The history a live dashboard or daemon keeps, or None when `[history] enabled = false`."""
    if not history_settings(config).enabled:
        return None
    service = HistoryService(config, collectors, on_notice=on_notice, backend_of=backend_of)
    try:
        service.start()
    except Exception as exc:  # an unwritable state dir: watch without history, and say so
        on_notice(f"history: not kept ({display_key(str(exc), 160)})")
        return None
    return service

"""One instance's polling loop: poll, probe between polls, keep the windows and the status.

Each instance has its own Poller task, so a dead or slow instance only ever delays itself.
Probes run in the same loop on sockets of their own, timed by the kernel (backends/probe.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import cast

from cachetop.backends import Backend, BackendError
from cachetop.backends.capabilities import FollowsMaster, HasDetailCadence
from cachetop.engine.config import InstanceConfig
from cachetop.engine.figures import NO_FIGURES, Figures
from cachetop.metrics.latency import QuantileWindow, samples_needed
from cachetop.metrics.totals import RunningTotals
from cachetop.metrics.window import CounterWindow, command_stats, windowed_metrics
from cachetop.model import CORE_METRICS, InstanceMetrics, Status

log = logging.getLogger("cachetop.poller")  # the name users see in logs; stable across moves

PROBES_PER_INTERVAL = 3
# The probe percentiles rest on at least this many probes (p99 needs 100): the last ones, when the
# window holds fewer, none older than 1.5 times the time they take (metrics/latency.py).
PERCENTILE_PROBES = samples_needed(0.99)
DETAIL_EVERY_S = 5.0
MIN_INTERVAL = 0.1  # seconds: the shortest interval +/- (Monitor.set_interval) can reach
STALE_AFTER = 0.5  # of an interval: a poll in flight longer leaves its instance's values stale
ROLES = {"master": "master", "slave": "replica"}  # INFO role -> what we show


def latency_horizon(window_s: float, interval: float) -> float:
    """How far back the probe percentiles may reach: 1.5 times what PERCENTILE_PROBES take."""
    return max(window_s, 1.5 * PERCENTILE_PROBES * interval / PROBES_PER_INTERVAL)


def latency_bucket(window_s: float, interval: float) -> float:
    """About five sketches per window, none shorter than an interval: each snapshot merges them,
    so more would cost CPU (a fleet of 200 reads 200 windows a second) for a sharper edge."""
    return max(interval, window_s / 5, 0.1)


_CAPABILITIES: dict[type, tuple[bool, bool]] = {}


def capabilities_of(backend: Backend) -> tuple[bool, bool]:
    """(follows a sentinel's master, has a detail cadence), asked once per backend class: an
    isinstance on a runtime Protocol costs ~30 µs, and a 10,000-instance fleet builds 10,000
    pollers before its first frame (the two checks were 0.6 s of it). Backends declare these
    members on the class or set them in every __init__, so the class decides."""
    kind = type(backend)
    if kind not in _CAPABILITIES:
        _CAPABILITIES[kind] = (isinstance(backend, FollowsMaster), isinstance(backend, HasDetailCadence))
    return _CAPABILITIES[kind]


class Poller:
    """Polls one instance forever; holds its windows and its current status."""

    def __init__(
        self,
        inst: InstanceConfig,
        backend: Backend,
        *,
        interval: float,
        timeout: float,
        window_s: float,
        clock: Callable[[], float],
        wall: Callable[[], float],
        poll_slots: AbstractAsyncContextManager[object],  # the Monitor's PollSlots
    ) -> None:
        self.inst = inst
        self.backend = backend
        # A backend that follows a sentinel's master: the row shows the master's address.
        follows_master, has_cadence = capabilities_of(backend)
        self._moving = cast(FollowsMaster, backend) if follows_master else None
        self._cadence = cast(HasDetailCadence, backend) if has_cadence else None
        self.interval = interval
        self.timeout = timeout
        self.clock, self.wall = clock, wall
        self.poll_slots = poll_slots
        self.window = CounterWindow(window_s)
        self.totals = RunningTotals()  # counters for Prometheus: never reset by the window
        self.latency = QuantileWindow(
            window_s,
            bucket_s=latency_bucket(window_s, interval),
            keep_recent=PERCENTILE_PROBES,
            horizon_s=latency_horizon(window_s, interval),
        )
        self.status = Status.UNKNOWN
        self.error: str | None = None
        self.last_poll_wall: float | None = None
        self._poll_since: float | None = None  # clock time the poll in flight began (None: none)
        self._probe_overdue_at: float | None = None  # while probing: when the next poll is due
        self.polls = 0
        self.detail_wanted = False
        self._set_detail_cadence()
        self._waiter: asyncio.Future[bool] | None = None
        self._running: asyncio.Event | None = None  # run()'s: cleared while the Monitor is paused
        self.polled = asyncio.Event()  # set after every poll; tests and `snapshot` wait on it
        # Cluster nodes: set by cachetop.engine.cluster from CLUSTER NODES; the role is refreshed by
        # every poll (INFO role), so a promoted replica shows without waiting for re-discovery.
        self.role: str | None = None
        self.shard: str | None = None
        # Figures other components measure for this instance (hot keys, stampedes, hot slots) are
        # not kept here: the Monitor asks them for each snapshot (engine/figures.py).

    def set_window(self, window_s: float) -> None:
        self.window.window_s = window_s
        self.latency.window_s = window_s
        self._fit_latency()
        self._set_detail_cadence()

    def set_interval(self, interval: float) -> None:
        """A new pace (the dashboard's +/-): the next poll comes `interval` after the last one,
        and the latency buckets and horizon follow."""
        self.interval = interval
        self._fit_latency()

    def _fit_latency(self) -> None:
        self.latency.rebucket(latency_bucket(self.latency.window_s, self.interval))
        self.latency.horizon_s = latency_horizon(self.latency.window_s, self.interval)

    @property
    def stale(self) -> bool:
        """Up, but a poll has been in flight for over STALE_AFTER of an interval (a healthy one
        takes milliseconds), or is that late because a probe holds it up: the values shown are
        the last ones, until the poll answers or its timeout declares the instance down."""
        since = self._poll_since if self._poll_since is not None else self._probe_overdue_at
        return (
            self.status == Status.UP
            and since is not None
            and self.clock() - since > STALE_AFTER * self.interval
        )

    def _set_detail_cadence(self) -> None:
        """Per-command figures come with one poll in several (they cost the most to fetch and
        parse); at least two must fall in every window, and every poll while someone looks."""
        if self._cadence is not None:
            every = 0.0 if self.detail_wanted else min(DETAIL_EVERY_S, self.window.window_s / 2)
            self._cadence.detail_every_s = every

    def want_detail(self, wanted: bool) -> None:
        """The dashboard's instance view asks for per-command figures on every poll while open."""
        self.detail_wanted = wanted
        self._set_detail_cadence()

    async def poll_once(self) -> None:
        now = self._poll_since = self.clock()
        try:
            async with self.poll_slots:
                if self._running is not None and not self._running.is_set():
                    return  # paused (or quitting) while queued for a slot: 10,000 queue at once
                # Stamped once we hold a slot, at the middle of the round trip: queueing for a
                # slot must not stretch the Δt that rates divide by.
                start = self.clock()
                # asyncio.timeout, not wait_for: no extra Task whose late exception could be
                # left unretrieved (and printed) when the Monitor stops mid-poll.
                async with asyncio.timeout(self.timeout):
                    sample = await self.backend.poll(start)
                now = (start + self.clock()) / 2
                sample = replace(sample, time=now)
        except TimeoutError:
            self._fail(now, Status.DOWN, f"timed out after {self.timeout:g}s")
        except BackendError as exc:
            self._fail(now, exc.status, exc.reason)
        except Exception as exc:  # a bug must show as a reason, not freeze the row
            log.exception("%s: poll failed", self.inst.name)
            self._fail(now, Status.DOWN, f"internal error: {type(exc).__name__} (see the log)")
        else:
            self.window.add(sample)
            self.totals.add(sample)
            self.status, self.error = Status.UP, None
            self.last_poll_wall = self.wall()
        finally:
            self._poll_since = None
        self.polls += 1
        self.polled.set()

    def _fail(self, now: float, status: Status, reason: str) -> None:
        if self.status != status or self.error != reason:
            log.info("%s: %s (%s)", self.inst.name, status, reason)
        self.status, self.error = status, reason
        self.window.record_failure(now)

    async def probe_once(self) -> None:
        try:
            elapsed = await self.backend.probe()
        except TimeoutError:
            # A timed-out probe is a real, very slow round trip: count it at the timeout.
            elapsed = self.timeout
        except OSError:
            elapsed = None  # refused or reset: the next poll will say why
        except Exception:  # a bug must not end this instance's polling
            log.exception("%s: probe failed", self.inst.name)
            elapsed = None
        if elapsed is not None:
            self.latency.add(elapsed * 1000.0, self.clock())

    async def run(self, paused: asyncio.Event) -> None:
        self._running = paused
        while True:
            await paused.wait()
            tick = self.clock()
            await self.poll_once()
            if self.status == Status.UP and not await self._probe_until(tick + self.interval):
                continue  # woken for an immediate refresh: poll again now
            await self._sleep_until(tick + self.interval)

    async def _probe_until(self, deadline: float) -> bool:
        """Probes spread over the interval; False when woken early by wake_up()."""
        step = self.interval / PROBES_PER_INTERVAL
        start = self.clock()
        for i in range(PROBES_PER_INTERVAL):
            if not await self._sleep_until(start + step * (i + 0.5)):
                return False
            if self.clock() >= deadline:
                return True
            self._probe_overdue_at = deadline  # a probe that hangs holds the next poll back
            try:
                await self.probe_once()
            finally:
                self._probe_overdue_at = None
        return True

    async def _sleep_until(self, when: float) -> bool:
        """Sleeps until `when`; returns False when woken early by wake_up() (refresh now).

        A bare future and a timer: wait_for() would create a Task per sleep, and a fleet of
        200 instances sleeps a thousand times a second."""
        delay = when - self.clock()
        if delay <= 0:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        timer = loop.call_later(delay, lambda: waiter.done() or waiter.set_result(True))
        self._waiter = waiter
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def wake_up(self) -> None:
        """Ends the current sleep at once (a refresh now)."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(False)

    def metrics(self, figures: Figures = NO_FIGURES) -> InstanceMetrics:
        """This instance's metrics now, with what contributors measured beside the poll (figures)."""
        now = self.clock()
        up = self.status == Status.UP
        values: dict[str, float | int | None] = {}
        facts: dict[str, str] = {}
        commands = {}
        memory_from = None
        if up and self.window.latest is not None:
            latest = self.window.latest
            # Every metric the registry computes from the window, the probe percentiles included.
            values.update(windowed_metrics(self.window, self.latency, now, PERCENTILE_PROBES))
            values.update(figures.metrics)
            facts = dict(latest.facts)
            commands = command_stats(self.window)
            memory_from = "system" if latest.gauges.get("memory_max_is_system") else "maxmemory"
            if self.role is not None and facts.get("role") in ROLES:
                self.role = ROLES[facts["role"]]
        else:
            values = dict.fromkeys(CORE_METRICS)
        return InstanceMetrics(
            name=self.inst.name,
            kind=self.backend.kind,
            # A sentinel-followed instance lives wherever the current master is.
            address=(self._moving.address if self._moving is not None else None) or self.inst.target.address,
            status=self.status,
            error=self.error,
            metrics=values,
            tags=self.inst.tags,
            facts=facts,
            memory_max_from=memory_from,
            commands=commands,
            last_poll=self.last_poll_wall,
            role=self.role,
            shard=self.shard,
            extras=dict(figures.extras),
            counters=self.totals.values(),
            stale=self.stale,
        )

"""What runs beside the Monitor when someone watches live: hot-key collectors and alerts.

Textual-free, so the dashboard and `cachetop daemon` share it. LiveSources is a FigureContributor
(engine/figures.py): each instance's hot-key view (extras["hotkeys"]) and `stampede_events` are
built as the Monitor builds that instance's metrics. The collectors' own commands and reads are
reported to the backend, which takes them out of ops/s and the hit ratio at the moment INFO runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cachetop.backends.capabilities import (
    AcceptsOwnSources,
    FollowsMaster,
    HasOwnGate,
    LendsSideCommands,
    ReportsWorkerDrops,
)
from cachetop.engine.config import Config, InstanceConfig
from cachetop.engine.figures import Figures
from cachetop.engine.monitor import CHUNK, CLOSE_DEADLINE_S, Monitor, close_all
from cachetop.engine.poller import Poller
from cachetop.engine.targets import format_address
from cachetop.util.aio import cancel_and_wait

if TYPE_CHECKING:  # imported when hot keys start: a process without them never loads them
    from cachetop.hotkeys.collector import HotKeyCollector

log = logging.getLogger("cachetop.live")  # the name users see in logs; stable across moves

# Sources that see individual requests, and so can see a stampede.
STAMPEDE_SOURCES = ("monitor", "watch")
# Above this many instances, `hotkeys = "auto"` samples nothing: a sampler per instance costs
# two connections and ~40 KB each, and thousands of MONITORs from one process is a load no
# one asked for. An instance whose config names a source is still sampled.
HOTKEYS_AUTO_LIMIT = 200


class OwnTotals:
    """What an instance's hot-key collectors have sent, summed over every collector it has had
    (a sentinel failover replaces the collector): the backend subtracts running totals, and a
    total that went down would look like a server restart and reset the window."""

    def __init__(self) -> None:
        self.current: HotKeyCollector | None = None
        self._commands: Counter[str] = Counter()
        self._hits = 0
        self._misses = 0

    def retire(self) -> None:
        c, self.current = self.current, None
        if c is not None:
            self._commands.update(c.own_command_counts)
            self._hits += int(c.own_keyspace_hits)
            self._misses += int(c.own_keyspace_misses)

    def commands(self) -> Counter[str]:
        return self._commands + self.current.own_command_counts if self.current else Counter(self._commands)

    def hits(self) -> int:
        return self._hits + (int(self.current.own_keyspace_hits) if self.current else 0)

    def misses(self) -> int:
        return self._misses + (int(self.current.own_keyspace_misses) if self.current else 0)

    def connections(self) -> int:
        return int(self.current.open_connections) if self.current else 0


class LiveSources:
    def __init__(
        self,
        config: Config,
        monitor: Monitor,
        *,
        hotkeys: bool = True,
        alerts: bool = True,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.monitor = monitor
        self.want_hotkeys = hotkeys
        self.want_alerts = alerts
        self.on_notice = on_notice or (lambda message: log.warning("%s", message))
        self.collectors: dict[str, HotKeyCollector] = {}
        self.alert_service: Any = None
        self.history: Any = None  # cachetop.history.service.HistoryService, when kept
        self.keyspace: Any = None  # analysis/keyspace/figures.KeyspaceFigures, when wanted
        self._cleanup: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._masters: dict[str, tuple[str, int]] = {}  # sentinel instances: the master sampled
        self._own: dict[str, OwnTotals] = {}  # per instance, across the collectors it has had
        self._figures: dict[str, Figures] = {}  # per instance: the last hot-key figures built
        self._moving: dict[str, asyncio.Lock] = {}
        self._auto_hotkeys = True  # False in a fleet above HOTKEYS_AUTO_LIMIT

    async def __aenter__(self) -> LiveSources:
        try:
            if self.want_hotkeys:
                await self._start_hotkeys()
                self._start_history()
            if self.want_alerts:
                await self._start_alerts()
            self._start_keyspace()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        for cleanup in self._cleanup:
            cleanup()
        self._cleanup.clear()
        await cancel_and_wait(list(self._tasks))
        # All at once and bounded: one by one, 3,000 collectors took minutes to stop.
        await close_all([c.stop() for c in self.collectors.values()], CLOSE_DEADLINE_S)
        self.collectors.clear()
        if self.history is not None:
            await self.history.stop()
            self.history = None
        if self.alert_service is not None:
            with contextlib.suppress(Exception):
                await self.alert_service.stop()
            self.alert_service = None

    def _start_keyspace(self) -> None:
        """expiry_cliff_keys from the last keyspace report, where a rule or [keyspace] asks."""
        from cachetop.analysis.keyspace import figures

        if figures.wanted(self.config):
            self.keyspace = figures.KeyspaceFigures.from_config(self.config)
            self._cleanup.append(self.monitor.add_figures(self.keyspace))

    # --- hot keys ----------------------------------------------------------------------------

    async def _start_hotkeys(self) -> None:
        from cachetop.hotkeys.config import HotKeySettings

        self._hotkey_settings = self.config.sections.get("hotkeys") or HotKeySettings()
        self._auto_hotkeys = len(self.monitor.pollers) <= HOTKEYS_AUTO_LIMIT
        if not self._auto_hotkeys:
            skipped = sum(p.inst.hotkeys == "auto" for p in self.monitor.pollers)
            self.on_notice(
                f"hot keys: not sampled on {skipped:,} instances in a fleet of more than "
                f"{HOTKEYS_AUTO_LIMIT} "
                '(set hotkeys = "monitor" on an instance, or run `cachetop hotkeys NAME`)'
            )
        for n, poller in enumerate(self.monitor.pollers, 1):
            if n % CHUNK == 0:
                await asyncio.sleep(0)  # a large fleet: keys and signals get through
            await self._start_collector(poller)
        # Cluster nodes come and go after start: give each its own collector, and stop it.
        self._cleanup.append(self.monitor.on_added.add(self._spawn(self._start_collector)))
        self._cleanup.append(self.monitor.on_removed.add(self._spawn(self._forget_collector)))
        self._cleanup.append(self.monitor.before_snapshot(self._follow_masters))
        self._cleanup.append(self.monitor.add_figures(self))

    def _spawn(self, job: Callable[[Poller], Awaitable[None]]) -> Callable[[Poller], None]:
        def start(poller: Poller) -> None:
            task = asyncio.create_task(job(poller))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return start

    async def _start_collector(self, poller: Poller) -> None:
        # A sentinel target names the sentinels, not the master: _follow_masters starts its
        # collector on the master once the sentinels have named it, and moves it on failover.
        if poller.inst.hotkeys == "off" or poller.inst.target.mode == "sentinel":
            return
        if poller.inst.hotkeys == "auto" and not self._auto_hotkeys:
            return
        await self._run_collector(poller, poller.inst)

    async def _run_collector(self, poller: Poller, inst: InstanceConfig) -> None:
        from cachetop.hotkeys.collector import HotKeyCollector

        backend = poller.backend
        collector = HotKeyCollector(
            inst,
            self._hotkey_settings,
            window_s=self.config.settings.window,
            timeout=self.config.timeout_of(poller.inst),
            gate=backend.own_gate if isinstance(backend, HasOwnGate) else None,
            # The poll connection and `stats` serve the sampler too: no side connection of its own.
            side=backend.side_commands if isinstance(backend, LendsSideCommands) else None,
            worker_drops=backend.worker_drops if isinstance(backend, ReportsWorkerDrops) else None,
        )
        own = self._own.get(poller.inst.name)
        if own is None:
            own = self._own[poller.inst.name] = OwnTotals()
            if isinstance(backend, AcceptsOwnSources):
                backend.add_own_source(
                    "hotkeys", own.commands, hits=own.hits, misses=own.misses, connections=own.connections
                )
        own.current = collector
        self.collectors[poller.inst.name] = collector
        await collector.start()

    async def _forget_collector(self, poller: Poller) -> None:
        """The instance left the fleet (a cluster node): its poller and backend are gone too."""
        # Forgotten first: the same name may be added back (a new backend) while this one stops.
        self._own.pop(poller.inst.name, None)
        self._masters.pop(poller.inst.name, None)
        self._figures.pop(poller.inst.name, None)
        self._moving.pop(poller.inst.name, None)  # a move still under way keeps its own reference
        await self._stop_collector(poller)

    async def _stop_collector(self, poller: Poller) -> None:
        collector = self.collectors.get(poller.inst.name)
        if collector is None:
            return
        # Out of the dict only once stopped: a cancelled stop leaves it for __aexit__ to stop.
        await collector.stop()
        if self.collectors.get(poller.inst.name) is collector:
            del self.collectors[poller.inst.name]
        own = self._own.get(poller.inst.name)
        if own is not None and own.current is collector:
            own.retire()

    def _follow_masters(self) -> None:
        for poller in self.monitor.pollers:
            if poller.inst.target.mode != "sentinel" or poller.inst.hotkeys == "off":
                continue
            if poller.inst.hotkeys == "auto" and not self._auto_hotkeys:
                continue
            master = poller.backend.master if isinstance(poller.backend, FollowsMaster) else None
            if master is not None and self._masters.get(poller.inst.name) != master:
                self._masters[poller.inst.name] = master
                self._spawn(self._move_collector)(poller)

    async def _move_collector(self, poller: Poller) -> None:
        name = poller.inst.name
        async with self._moving.setdefault(name, asyncio.Lock()):
            master = self._masters.get(name)
            current = self.collectors.get(name)
            if master is None or (
                current is not None and current.inst.target.address == format_address(*master)
            ):
                return
            await self._stop_collector(poller)
            target = replace(
                poller.inst.target, host=master[0], port=master[1], mode="single", seeds=(), service=None
            )
            await self._run_collector(poller, replace(poller.inst, target=target))

    def figures(self, instance: str) -> Figures | None:
        """The FigureContributor: an instance's hot-key view (extras["hotkeys"]) and its
        stampede_events, built as the Monitor builds its metrics. The last view stays while a
        collector moves to a sentinel's new master or a view fails to build."""
        collector = self.collectors.get(instance)
        if collector is not None:
            try:
                view = collector.snapshot()
            except Exception:  # a view that fails to build is skipped, never fatal
                log.debug("hot-key view failed for %s", instance, exc_info=True)
            else:
                stampedes = view.stampede_events if view.source in STAMPEDE_SOURCES else None
                self._figures[instance] = Figures(
                    metrics={"stampede_events": stampedes}, extras={"hotkeys": view}
                )
        return self._figures.get(instance)

    # --- history (cachetop/history): fed by the collectors' slots and the snapshots ----------

    def _start_history(self) -> None:
        from cachetop.history.service import start_history

        self.history = start_history(self.config, self.collectors, self.on_notice, self.monitor.backend_of)
        if self.history is not None:
            self._cleanup.append(self.history.attach(self.monitor))

    # --- alerts ------------------------------------------------------------------------------

    async def _start_alerts(self) -> None:
        if not any(name in self.config.sections for name in ("rule", "alerts", "channel")):
            return
        from cachetop.alerts.service import AlertService, AlertsLocked

        service = AlertService(self.config)
        try:
            await service.start()
        except AlertsLocked as exc:
            self.on_notice(str(exc))
            return
        self.alert_service = service
        self._cleanup.append(service.attach(self.monitor))

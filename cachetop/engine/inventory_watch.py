"""Keeps a running Monitor's instances equal to the inventory files, without a restart.

Every `refresh` seconds (default: a quarter of the interval) the watcher asks the Inventory
(engine/inventory.py) whether a file changed (a stat per file) and applies the difference through
the Fleet interface (engine/fleet.py): a new target starts polling, a removed one stops and
its connections close, a changed one (URL, tags, interval...) is removed and added again. Only
the targets this daemon's shard owns are polled (engine/shards.py). A redis-cluster:// target
gets a ClusterWatcher of its own, which adds and removes its nodes as the cluster changes.

The watcher owns the inventory's instances: the daemon starts the Monitor with the [[instance]]
tables only and lets `start()` add the rest, so one component decides what the files hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from cachetop.engine.cluster import ClusterWatcher
from cachetop.engine.config import Config, InstanceConfig
from cachetop.engine.figures import FigureContributor
from cachetop.engine.fleet import Fleet
from cachetop.engine.inventory import Inventory
from cachetop.engine.monitor import CHUNK  # targets added between two yields to the event loop
from cachetop.util.aio import cancel_and_wait

log = logging.getLogger("cachetop.inventory")


class InventoryFleet(Fleet, Protocol):
    """The Fleet, and the figure board a cluster watcher reports its hot slots to."""

    def add_figures(self, contributor: FigureContributor) -> Callable[[], None]: ...


class InventoryWatcher:
    def __init__(
        self,
        fleet: InventoryFleet,
        inventory: Inventory,
        config: Config,
        *,
        owns: Callable[[str], bool] = lambda name: True,
    ) -> None:
        self.fleet = fleet
        self.inventory = inventory.copy()  # the config's stays as loaded
        self.config = config
        self.owns = owns
        inventory_names = inventory.names()
        # The [[instance]] tables: their names stay taken, whatever the files say.
        self.static = {
            i.name: "an [[instance]] table" for i in config.instances if i.name not in inventory_names
        }
        self.current: dict[str, InstanceConfig] = {}
        self._clusters: dict[str, tuple[ClusterWatcher, asyncio.Task[None], Callable[[], None]]] = {}
        # Four times per interval by default: a new target is seen within a quarter interval,
        # polled at once and shown in the next Snapshot, so within 1.25 intervals; a check is a
        # stat per file (a directory of 100 files: ~0.2 ms).
        self.refresh = inventory.settings.refresh or config.settings.interval / 4
        self.checks = 0  # scans done (tests wait on it)

    def wanted(self) -> dict[str, InstanceConfig]:
        found = self.inventory.instances(self.static, lambda problem: log.warning("%s", problem))
        light = self.config.settings.profile == "light"
        return {i.name: replace(i, hotkeys="off") if light else i for i in found if self.owns(i.name)}

    async def start(self) -> None:
        """Adds the targets the files hold now (read when the config was loaded)."""
        await self._apply(self.wanted())
        log.info("inventory: %d target(s) from %d file(s)", len(self.current), len(self.inventory.entries))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            try:
                await self.check()
            except Exception:  # a bug here must not stop the daemon: the next check tries again
                log.exception("inventory: check failed")

    async def check(self) -> bool:
        """One look at the files; True when the polled targets changed."""
        self.checks += 1
        if not self.inventory.scan(lambda problem: log.error("inventory: %s", problem)):
            return False
        return await self._apply(self.wanted())

    async def _apply(self, wanted: dict[str, InstanceConfig]) -> bool:
        removed = [n for n in self.current if n not in wanted]
        changed = [n for n in self.current if n in wanted and wanted[n] != self.current[n]]
        added = [n for n in wanted if n not in self.current]
        for name in (*removed, *changed):
            await self._remove(self.current.pop(name))
        for n, name in enumerate((*changed, *added), 1):
            if n % CHUNK == 0:
                await asyncio.sleep(0)  # thousands of new targets: the loop still polls and publishes
            await self._add(wanted[name])
            self.current[name] = wanted[name]
        if self.checks and (removed or changed or added):
            log.info(
                "inventory: %d added, %d removed, %d changed (%d target(s) now)%s",
                len(added),
                len(removed),
                len(changed),
                len(self.current),
                _names_note(added, removed, changed),
            )
        return bool(removed or changed or added)

    async def _add(self, inst: InstanceConfig) -> None:
        if not inst.cluster:
            self.fleet.add_instance(inst)
            return
        watcher = ClusterWatcher(self.fleet, inst, self.config.timeout_of(inst))
        unregister = self.fleet.add_figures(watcher)
        await watcher.start()
        task = asyncio.create_task(watcher.run(), name=f"cluster {inst.name}")
        self._clusters[inst.name] = (watcher, task, unregister)

    async def _remove(self, inst: InstanceConfig) -> None:
        cluster = self._clusters.pop(inst.name, None)
        if cluster is None:
            await self.fleet.remove_instance(inst.name)
            return
        watcher, task, unregister = cluster
        await cancel_and_wait([task])
        unregister()
        for member in self.fleet.members(f"{inst.name}/"):
            await self.fleet.remove_instance(member.inst.name)
        with contextlib.suppress(Exception):
            await watcher.close()

    async def close(self) -> None:
        """Stops the cluster watchers (the Monitor closes every poller itself)."""
        for watcher, task, unregister in self._clusters.values():
            await cancel_and_wait([task])
            unregister()
            with contextlib.suppress(Exception):
                await watcher.close()
        self._clusters.clear()


def _names_note(added: list[str], removed: list[str], changed: list[str]) -> str:
    """The names, when few enough to read in one log line."""
    parts = [
        f"{sign}{name}" for sign, names in (("+", added), ("-", removed), ("~", changed)) for name in names
    ]
    return ": " + ", ".join(parts) if 0 < len(parts) <= 10 else ""

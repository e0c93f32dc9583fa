"""Sentinel: `redis-sentinel://host:26379[,host2:26379]/MASTER` follows the current master.

SentinelBackend asks the sentinels `SENTINEL GET-MASTER-ADDR-BY-NAME MASTER` and polls the master
they name through an ordinary Redis backend. It asks again every RECHECK_EVERY polls and after
every failed poll, so after a failover the instance moves to the promoted replica as soon as
the sentinels agree on it. The instance keeps its name; its address is the current master's.
A change of master starts a new window, like a restart (the run_id changes).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from redis.exceptions import RedisError

from cachetop.backends.base import Backend, BackendError
from cachetop.backends.capabilities import (
    AcceptsOwnSources,
    HasDetailCadence,
    HasOwnGate,
    LendsSideCommands,
    SideCommands,
)
from cachetop.backends.redis_client import async_client
from cachetop.engine.config import InstanceConfig
from cachetop.engine.targets import format_address
from cachetop.model import Sample, Status
from cachetop.util.aio import OwnTrafficGate

log = logging.getLogger("cachetop.sentinel")  # the name users see in logs; stable across moves

RECHECK_EVERY = 5  # polls


class SentinelBackend:
    def __init__(
        self,
        inst: InstanceConfig,
        timeout: float,
        factory: Callable[[InstanceConfig, float], Backend],
        recheck_every: int = RECHECK_EVERY,
    ) -> None:
        self.inst = inst
        self.timeout = timeout
        self.factory = factory
        self.recheck_every = recheck_every
        self.service = inst.target.service or ""
        self.master: tuple[str, int] | None = None
        self.inner: Backend | None = None
        self.polled_inst: InstanceConfig | None = None  # the instance as the current master
        self.switches = 0  # how many times the master moved (the first discovery included)
        self._polls_since_check = 0
        self._last_failed = False
        self._sentinels = [self._sentinel_client(h, p) for h, p in inst.target.seeds]
        # What the Poller and live sources set on a backend, kept so each new master gets it too.
        self._detail_every_s: float | None = None
        self._own_sources: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    @property
    def detail_every_s(self) -> float | None:
        return self._detail_every_s

    @detail_every_s.setter
    def detail_every_s(self, seconds: float | None) -> None:
        self._detail_every_s = seconds
        if self.inner is not None and seconds is not None and isinstance(self.inner, HasDetailCadence):
            self.inner.detail_every_s = seconds

    def add_own_source(self, name: str, *args: Any, **kwargs: Any) -> None:
        self._own_sources[name] = (args, kwargs)
        if self.inner is not None and isinstance(self.inner, AcceptsOwnSources):
            self.inner.add_own_source(name, *args, **kwargs)

    @property
    def own_gate(self) -> OwnTrafficGate | None:
        """The current master's gate: one per server, so a collector still busy with the old
        master after a failover cannot hold up the new master's polls."""
        return self.inner.own_gate if isinstance(self.inner, HasOwnGate) else None

    @property
    def side_commands(self) -> SideCommands | None:
        """The current master's poll connection, for the hot-key sampler (hotkeys/conn.py)."""
        return self.inner.side_commands if isinstance(self.inner, LendsSideCommands) else None

    def _configure(self, inner: Backend) -> None:
        if self._detail_every_s is not None and isinstance(inner, HasDetailCadence):
            inner.detail_every_s = self._detail_every_s
        if isinstance(inner, AcceptsOwnSources):
            for name, (args, kwargs) in self._own_sources.items():
                inner.add_own_source(name, *args, **kwargs)

    def _sentinel_client(self, host: str, port: int) -> Any:
        # Sentinels are asked without the master's credentials; no retry: the next one is it.
        return async_client(
            self.inst,
            self.timeout,
            "cachetop-sentinel",
            host=host,
            port=port,
            db=0,
            auth=False,
            decode_responses=True,
        )

    @property
    def kind(self) -> str:
        return self.inner.kind if self.inner is not None else "redis"

    @property
    def address(self) -> str | None:
        return format_address(*self.master) if self.master else None

    async def ask(self) -> tuple[str, int] | None:
        """The master's address from the first sentinel that knows it; None if none answers."""
        for client in self._sentinels:
            try:
                reply = await client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            except (RedisError, OSError):
                continue
            if reply:
                host, port = reply
                return str(host), int(port)
        return None

    async def _follow(self) -> None:
        found = await self.ask()
        self._polls_since_check = 0
        if found is None:
            if self.inner is None:
                raise BackendError(Status.DOWN, f"no sentinel knows a master named {self.service!r}")
            return  # keep polling the last known master; its own errors say what is wrong
        if found == self.master and self.inner is not None:
            return
        if self.master is not None:
            log.info("%s: master moved from %s to %s", self.inst.name, self.address, format_address(*found))
        old, self.master = self.inner, found
        target = replace(
            self.inst.target, host=found[0], port=found[1], mode="single", seeds=(), service=None
        )
        self.polled_inst = replace(self.inst, target=target)
        self.inner = self.factory(self.polled_inst, self.timeout)
        self._configure(self.inner)
        self.switches += 1
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()

    async def poll(self, now: float) -> Sample:
        if self.inner is None or self._last_failed or self._polls_since_check >= self.recheck_every:
            await self._follow()
        self._polls_since_check += 1
        assert self.inner is not None
        try:
            sample = await self.inner.poll(now)
        except BackendError:
            self._last_failed = True
            raise
        self._last_failed = False
        return sample

    async def probe(self) -> float:
        if self.inner is None:
            raise ConnectionRefusedError("no master yet")
        return await self.inner.probe()

    def close_probe(self) -> None:
        if self.inner is not None:
            self.inner.close_probe()

    async def close(self) -> None:
        if self.inner is not None:
            await self.inner.close()
        for client in self._sentinels:
            with contextlib.suppress(Exception):
                await client.aclose()

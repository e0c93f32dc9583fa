"""What some backends can do beyond the Backend protocol (backends/base.py), each a Protocol.

A component that needs one asks with isinstance (the Protocols are runtime-checkable), never
with getattr and a default: the name of each capability is written once, here, and a backend
that grows one is found by every caller at once. Which backend has which:

    capability          Redis   Memcached   Sentinel (the current master's)
    HasOwnGate          yes     -           yes (None until a master is known)
    LendsSideCommands   yes     -           yes (None until a master is known)
    ReportsWorkerDrops  -       yes         -
    AcceptsOwnSources   yes     yes         yes (kept for each new master)
    RunsOwnCommands     yes     -           -
    CountsOwnCommands   yes     -           -
    HasDetailCadence    yes     -           yes
    FollowsMaster       -       -           yes

runtime_checkable isinstance only checks that the members exist; the types are checked by mypy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from cachetop.engine.config import InstanceConfig
from cachetop.util.aio import OwnTrafficGate


class SideCommands(Protocol):
    """Where a sampler sends its request/response commands (COMMAND, CONFIG GET, CLIENT LIST):
    replies come back raw (bytes, integers, lists, as RESP2 reads), an error reply raised.

    In a process that polls the instance (dashboard, daemon) it is the poll connection
    (backends/redis_side.py PollConnectionSide), so a MONITOR phase costs one connection more, not two;
    `cachetop hotkeys`, which polls nothing, has a connection of its own (hotkeys/conn.py SideConnection)."""

    @property
    def connections(self) -> int:
        """Connections it holds open of its own (the poll connection's are the poller's: 0)."""
        ...

    async def call(self, *args: str | int) -> Any: ...

    async def rest(self) -> None:
        """Between phases: closes what it holds of its own."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class HasOwnGate(Protocol):
    """The gate that keeps cachetop's side commands out of the way of a poll's INFO (util/aio.py)."""

    @property
    def own_gate(self) -> OwnTrafficGate | None: ...


@runtime_checkable
class LendsSideCommands(Protocol):
    """The poll connection, lent to a hot-key sampler: a sample then costs no side connection."""

    @property
    def side_commands(self) -> SideCommands | None: ...


@runtime_checkable
class ReportsWorkerDrops(Protocol):
    """memcached's log_worker_dropped from the last poll, for the `watch` sampler's drop rate."""

    def worker_drops(self) -> int | None: ...


@runtime_checkable
class AcceptsOwnSources(Protocol):
    """Other components report here what they send and read (backends/own_traffic.py OwnSources.add),
    so a poll takes it out of ops/s, the hit ratio and connected_clients."""

    def add_own_source(
        self,
        name: str,
        sent: Callable[[], Mapping[str, int]],
        hits: Callable[[], int] | None = None,
        misses: Callable[[], int] | None = None,
        connections: Callable[[], int] | None = None,
    ) -> None: ...


@runtime_checkable
class CountsOwnCommands(Protocol):
    """Its running count of the commands sent on the poll connection, per name: a short-lived
    fetch of ours (the detail view's slowlog and clients) adds to it what it sends."""

    own_commands: Counter[str]


@runtime_checkable
class RunsOwnCommands(Protocol):
    """Sends commands on the poll connection as cachetop's own (left out of every figure);
    returns the raw replies, an error reply as an exception value."""

    async def run_own(self, *commands: tuple[str, ...]) -> list[Any]: ...


@runtime_checkable
class HasDetailCadence(Protocol):
    """How often a poll also fetches the costly per-command figures (0: every poll)."""

    detail_every_s: float


@runtime_checkable
class FollowsMaster(Protocol):
    """A backend that polls whichever server the sentinels name as master."""

    @property
    def master(self) -> tuple[str, int] | None: ...

    @property
    def address(self) -> str | None: ...  # the master's, as shown (None until one is known)

    @property
    def polled_inst(self) -> InstanceConfig | None:
        """The instance with the current master's address: what actions and detail fetches reach."""
        ...

"""The narrow interface through which discovery tells the Monitor which instances exist.

Cluster discovery (engine/cluster.py) learns nodes from CLUSTER NODES; it tells the Monitor to
add, remove, label and arrange them through `Fleet`, and reads each one through `FleetMember`,
whose members are read-only. It never holds the Monitor itself, never touches its poller list,
and never sets a field on a Poller: the pipeline runs one way, and cluster.py does not import
monitor.py (tests/unit/test_import_graph.py keeps it so).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cachetop.backends.base import Backend
from cachetop.engine.config import InstanceConfig
from cachetop.model import Status


class FleetMember(Protocol):
    """What discovery may read of one polled instance (a Poller is one)."""

    @property
    def inst(self) -> InstanceConfig: ...

    @property
    def status(self) -> Status: ...

    @property
    def role(self) -> str | None: ...  # master | replica, refreshed by every poll (INFO role)

    @property
    def shard(self) -> str | None: ...

    @property
    def backend(self) -> Backend: ...  # for its capabilities (backends/capabilities.py)


class Fleet(Protocol):
    """What discovery may ask of the Monitor (the Monitor is one)."""

    @property
    def interval(self) -> float: ...

    def members(self, prefix: str) -> list[FleetMember]:
        """The instances whose name starts with `prefix`, in the order they are shown."""
        ...

    def add_instance(self, inst: InstanceConfig) -> FleetMember:
        """Starts polling one more instance."""
        ...

    async def remove_instance(self, name: str) -> None:
        """Stops polling an instance and closes its connections."""
        ...

    def place(self, name: str, *, role: str | None, shard: str | None) -> None:
        """Labels an instance with its role and shard (what the overview groups by)."""
        ...

    def arrange(self, names: Sequence[str]) -> None:
        """Shows these instances together in this order, where the first of them is now."""
        ...

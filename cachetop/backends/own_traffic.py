"""What cachetop itself sends to a server, so that polls can take it out of what they report.

Each component counts its commands when it sends them (per command name), and the keyspace
hits/misses its reads cause; the Redis backend reads all of it the moment a poll's INFO runs
(OwnTraffic) and metrics/window.py subtracts the deltas. The connections components hold open
are taken out of `connections` the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple


class OwnTraffic(NamedTuple):
    """What cachetop had sent to the server when a poll's INFO ran (cumulative counts)."""

    commands: dict[str, int]
    errors: int
    hits: int
    misses: int
    connections: int = 0  # other components' connections open at that moment (hot keys)


class OwnSources:
    """The running counts of the components other than the poll itself (hot keys...)."""

    def __init__(self) -> None:
        self._sent: dict[str, Callable[[], Mapping[str, int]]] = {}
        # Keyspace hits/misses other components cause (OBJECT FREQ counts as a read).
        self._reads: dict[str, tuple[Callable[[], int], Callable[[], int]]] = {}
        self._connections: dict[str, Callable[[], int]] = {}

    def add(
        self,
        name: str,
        sent: Callable[[], Mapping[str, int]],
        hits: Callable[[], int] | None = None,
        misses: Callable[[], int] | None = None,
        connections: Callable[[], int] | None = None,
    ) -> None:
        """Registers (or replaces), by name, another cachetop component's running counts:
        commands sent to this server per command name, and the keyspace hits/misses its reads
        caused, which polls take out of ops/s, the error rate and each command's stats; and the
        connections it holds open, which connected_clients counts."""
        self._sent[name] = sent
        if hits is not None and misses is not None:
            self._reads[name] = (hits, misses)
        if connections is not None:
            self._connections[name] = connections

    def add_commands_to(self, own: dict[str, int]) -> dict[str, int]:
        for sent in self._sent.values():
            for command, n in sent().items():
                own[command] = own.get(command, 0) + n
        return own

    def reads(self) -> tuple[int, int]:
        return (
            sum(h() for h, _ in self._reads.values()),
            sum(m() for _, m in self._reads.values()),
        )

    def connections(self) -> int:
        return sum(c() for c in self._connections.values())

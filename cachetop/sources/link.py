"""What a screen asks a Source that reaches its data over a network link (an attached daemon).

    if isinstance(source, LinkStatus) and source.link_problem: show a banner
    if isinstance(source, RemoteActions): evict through it (the daemon checks, runs and audits)

Protocols, so the dashboard depends on what a source can say, never on sources/attach.py.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class LinkStatus(Protocol):
    @property
    def link_problem(self) -> str | None:
        """None while data flows; else one line: why (refused, connection lost) and the retry."""

    @property
    def last_data(self) -> float | None:
        """Wall-clock time of the last snapshot received (None before the first)."""

    @property
    def where(self) -> str:
        """The daemon's URL, without secrets."""


@runtime_checkable
class RemoteActions(Protocol):
    """Actions run by the far side: dry run first, then confirm the plan it returned."""

    @property
    def can_act(self) -> bool:
        """An action token is set (without one the viewer is read-only)."""

    @property
    def read_only_reason(self) -> str:
        """Why it cannot act, for a person ("" when it can)."""

    async def evict_dry_run(self, instance: str, body: dict[str, Any]) -> dict[str, Any]:
        """body: {"keys": [base64...]} or {"pattern": ...} or {"prefix": ...}; returns the plan
        ({"plan", "matched", "examples", "summary"}) or raises RemoteActionError."""

    async def evict_confirm(self, plan: str, confirm: bool = True) -> dict[str, Any]: ...


class RemoteActionError(Exception):
    """The daemon refused or failed an action: the message is its one line."""

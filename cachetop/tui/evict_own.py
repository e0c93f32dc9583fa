"""The dashboard's evicts, counted as cachetop's own traffic of the instance they evict from.

The evictor reports every round trip it sends (and the keyspace hits its OBJECT IDLETIME reads
cause: a dry run over a million keys would otherwise show as a million hits) to the poller's
backend of the instance, under the own-traffic gate: actions/own_report.py, shared with the
daemon's API evicts. This module only finds that backend among the dashboard's live pollers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cachetop.actions.own_report import EVICT, ThreadOwnReport, thread_own_report


def evict_report(app: Any, instance: str, loop: asyncio.AbstractEventLoop | None) -> ThreadOwnReport | None:
    """The report for the instance's live backend (registered on first use), or None without
    one (an attached or replayed dashboard polls nothing itself)."""
    if app is None or loop is None:
        return None
    pollers = app.live_pollers() if hasattr(app, "live_pollers") else ()
    poller = next((p for p in pollers if p.inst.name == instance), None)
    return thread_own_report(getattr(poller, "backend", None), loop, EVICT)

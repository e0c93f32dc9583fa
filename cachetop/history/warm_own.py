"""A scheduled warm's commands, counted as cachetop's own traffic of the instance it warms.

The daemon's (and the dashboard's) warm-ahead sends about four commands per key (SET NX for the
lock, MEMORY USAGE, SET, DEL) from a worker thread on a connection of its own. Each command it
sends is reported to the poller's backend under the source `warm-ahead`, and each round trip
holds the backend's own-traffic gate shared: actions/own_report.py, shared with the evicts.
"""

from __future__ import annotations

import asyncio

from cachetop.actions.own_report import ThreadOwnReport, thread_own_report

SOURCE = "warm-ahead"


def own_report(backend: object | None, loop: asyncio.AbstractEventLoop) -> ThreadOwnReport | None:
    """The report for the poller's backend of the warmed instance (registered with it on first
    use), or None when no poller watches it or its backend takes no reports."""
    return thread_own_report(backend, loop, SOURCE)

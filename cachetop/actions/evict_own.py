"""An evict run beside a poller (the daemon's API, the dashboard), counted as cachetop's own traffic.

Every round trip of the evict (the handshake, INFO, ROLE, SCAN, MEMORY USAGE, OBJECT IDLETIME,
UNLINK) is reported to the poller's backend of the instance under the source `evict`, with the
keyspace hits and misses its OBJECT IDLETIME reads cause (Redis counts each as a hit, a miss for
a key gone), while holding the backend's own-traffic gate: actions/own_report.py, shared with the
scheduled warm. An otherwise idle server reads 0 ops/s across an evict, dry run included.
"""

from __future__ import annotations

import asyncio

from cachetop.actions.own_report import ThreadOwnReport, thread_own_report

SOURCE = "evict"


def evict_own_report(backend: object | None, loop: asyncio.AbstractEventLoop) -> ThreadOwnReport | None:
    """The report for the poller's backend of the instance evicted from (registered with it on
    first use), or None when no poller watches it or its backend takes no reports."""
    return thread_own_report(backend, loop, SOURCE)

"""A recording of the demo fleet for tests that replay or export one: real pollers on the demo's
real servers, recorded through the same outputs `--record` attaches."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cachetop.demo import DemoFleet
from cachetop.engine.monitor import Monitor
from cachetop.exporters.outputs import attach_outputs
from cachetop.model import Snapshot


def record_demo(path: Path, frames: int, deadline_s: float) -> list[Snapshot]:
    """Records `frames` snapshots of the demo (0.1 s apart, fast phases) to `path`; the snapshots
    as the monitor published them."""
    seen: list[Snapshot] = []

    async def record() -> None:
        with DemoFleet(ops_per_sec=600, phase_scale=0.1) as fleet:
            async with (
                Monitor(fleet.config(interval=0.1, window=1.0)) as mon,
                attach_outputs(mon, record=str(path)),
            ):
                mon.subscribe(seen.append)
                await mon.wait_snapshot(lambda s: len(seen) >= frames, deadline_s)
                mon.pause()

    asyncio.run(record())
    return seen

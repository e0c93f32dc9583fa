"""The dashboard on Prometheus (issue 19): what one refresh of `--source prometheus://` costs as the
fleet grows. It must scale with the number of metrics, not of instances.

Two exporters (the daemon's own PrometheusExporter, serving a synthetic Snapshot of N/2 instances
each, every registry metric set) are scraped by a real Prometheus every 10 s. Once Prometheus
holds all N instances, PrometheusSource.read() (every query of one refresh, at one evaluation
time, and the Snapshot built from the answers) is timed REPEAT times.

Printed per fleet size: the median wall time of one refresh, the queries it sent (the same for
every N), and the time per instance as a ratio against the smallest fleet, measured in the same
run. Run: `.venv/bin/python bench/prometheus_source.py` (needs prometheus on PATH).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cachetop.exporters.prometheus import PrometheusExporter
from cachetop.model import METRICS, InstanceMetrics, Snapshot, Status
from cachetop.sources.prometheus import PrometheusSource
from tests.conftest import wait_until
from tests.prom_fixture import Processes, prom_query, scrape_config

SIZES = tuple(int(a) for a in sys.argv[1:]) or (500, 2000, 5000)
REPEAT = 5


def fleet(prefix: str, count: int) -> Snapshot:
    instances = tuple(
        InstanceMetrics(
            name=f"{prefix}-{n:05d}",
            kind="redis",
            address=f"10.0.{n // 250}.{n % 250}:6379",
            status=Status.UP,
            error=None,
            metrics={name: float(n % 97) + 0.5 for name in METRICS},
            tags=(prefix,),
            counters={"hits": n, "misses": n // 10, "commands": 3 * n},
        )
        for n in range(count)
    )
    return Snapshot(time=time.time(), window_s=10.0, instances=instances)


def measure(size: int, workdir: Path) -> tuple[float, int]:
    exporters = []
    for half in ("a", "b"):
        exporter = PrometheusExporter()
        exporter.on_snapshot(fleet(half, size // 2))
        exporter.serve(0, "127.0.0.1")
        exporters.append(exporter)
    (workdir / str(size)).mkdir()
    procs = Processes(workdir / str(size))  # a tsdb per fleet size
    try:
        port = procs.prometheus(scrape_config([e.port for e in exporters], "10s"))
        wait_until(
            lambda: len(prom_query(port, "cachetop_up")) == size, 120, f"Prometheus to hold {size} instances"
        )
        source = PrometheusSource(f"prometheus://127.0.0.1:{port}", history=False)

        async def timed() -> list[float]:
            out = []
            for _ in range(REPEAT):
                started = time.perf_counter()
                snap = await source.read()
                out.append(time.perf_counter() - started)
                assert len(snap.instances) == size, (len(snap.instances), size)
            return out

        times = asyncio.run(timed())
        return statistics.median(times), source.client.queries // REPEAT
    finally:
        procs.stop()
        for exporter in exporters:
            exporter.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = {size: measure(size, Path(tmp)) for size in SIZES}
    base_size = SIZES[0]
    base = results[base_size][0] / base_size
    print(f"{'instances':>10} {'refresh':>10} {'queries':>8} {'per instance':>13} {'ratio':>6}")
    for size, (median, queries) in results.items():
        per = median / size
        print(f"{size:>10} {median * 1000:>8.0f}ms {queries:>8} {per * 1e6:>11.0f}us {per / base:>6.2f}")
    print(f"(ratio: time per instance against the {base_size}-instance fleet, same run; median of {REPEAT})")


if __name__ == "__main__":
    main()

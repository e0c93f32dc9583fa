"""Sizing against the server, repeated: predicted minus measured hit ratio at half and twice the memory.

The acceptance test (tests/integration/test_sizing_redis.py) runs once per policy; this runs the
same steps `--runs` times per policy (default 1, about 50 s each) and prints every run and the
spread, so a claim such as "at most 1.5 points off" comes with the command that measured it:

    .venv/bin/python bench/sizing_resize.py --runs 6

Each run: a Redis with maxmemory 40 MiB and the policy, the cache-aside Zipf 0.9 workload over
300,000 keys of 1 KB (its own process), the hit ratio settled, a 30 s profile at 5%, then
maxmemory set to 20 and 80 MiB in turn and the settled hit ratio read from the server's counters.
The reference is the measured value, taken in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from cachetop.analysis.sizing.analyse import analyse_redis
from cachetop.servers import redis_server
from tests.integration.test_sizing_redis import PROFILE_S, M, inst_of, settled_hit_ratio, start_workload

SIZES = (M // 2, M, 2 * M)


def one_run(policy: str, seed: int) -> dict[int, float]:
    """Predicted minus measured, in points, at each size (at M: the curve against the hit ratio
    the profile measured just before MONITOR went on)."""
    server = redis_server(
        workdir=Path(tempfile.mkdtemp(prefix="cachetop-bench-resize-")),
        extra=["--maxmemory", str(M), "--maxmemory-policy", policy],
    )
    client = redis.Redis(port=server.port)
    workload = start_workload(server, seed)
    try:
        settled_hit_ratio(client)
        report = asyncio.run(analyse_redis(inst_of(server), duration=PROFILE_S, rate=0.05))
        curve = report.current_curve()
        if curve is None or report.hit_ratio_now is None or report.predicted_now is None:
            raise SystemExit(f"no curve: {report.notes}")
        gaps = {M: report.predicted_now - report.hit_ratio_now}
        for size in (M // 2, 2 * M):
            client.config_set("maxmemory", size)
            measured = settled_hit_ratio(client)
            predicted = curve.hit_ratio_at(size)
            assert predicted is not None
            gaps[size] = predicted - measured
            print(f"  {policy} at {size >> 20} MiB: predicted {predicted:.2f}, measured {measured:.2f}")
        return gaps
    finally:
        workload.kill()
        workload.wait()
        client.close()
        server.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per policy (about 50 s each)")
    parser.add_argument("--policy", action="append", help="allkeys-lru, allkeys-lfu (default: both)")
    args = parser.parse_args(argv)
    policies = args.policy or ["allkeys-lru", "allkeys-lfu"]
    print("predicted minus measured hit ratio, in points (the measured value is the reference)")
    for policy in policies:
        runs = [one_run(policy, seed) for seed in range(7, 7 + args.runs)]
        for size in SIZES:
            gaps = [r[size] for r in runs]
            print(
                f"{policy:12} {size >> 20:>3} MiB: median {statistics.median(gaps):+.2f}, "
                f"from {min(gaps):+.2f} to {max(gaps):+.2f} over {len(gaps)} run(s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

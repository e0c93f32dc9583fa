"""Keyspace analysis against `redis-cli --memkeys`, on the same data in the same run.

One Redis gets the five-prefix keyspace of the acceptance test (tests/keyspace_data.py:
1,000,000 keys), and the exact bytes per prefix from a full MEMORY USAGE pass. Then:

1. the server time each way costs, from INFO commandstats usec deltas (time inside commands) and
   INFO cpu deltas (the server process's CPU, parsing and replies included): `redis-cli --memkeys`
   (SCAN + TYPE + MEMORY USAGE on every key) against the analysis with every name counted, and
   with the name count stopped early (--max-scan), each with its worst per-prefix bytes error;
   the load on a shared machine drifts, so each row has a --memkeys run of its own next to it;
2. accuracy against sample size: the worst per-prefix bytes error and how many exact values fell
   inside the stated 95% intervals, over several seeds;
3. the default budget (20,000 operations/s): keys analysed per second, and the p99 of a PING
   probe (every 2 ms on its own connection, as the dashboard's) during the run against idle.

Goal: per-prefix bytes within ±5% for at most 1/20 of the server time `redis-cli --memkeys` spends.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.evict import ProbeThread
from cachetop.analysis.keyspace import analyse_instance
from cachetop.engine.config import InstanceConfig
from cachetop.engine.targets import parse_target
from cachetop.servers import LocalServer, redis_server
from tests.keyspace_data import five_prefixes, memory_usage, pipe_into_redis

SCALE = 1.0
SEEDS = (1, 2, 3)


def commandstats(server: LocalServer) -> dict[str, tuple[int, int]]:
    """{command: (calls, usec)} from INFO commandstats, leaving out INFO and CLIENT SETNAME."""
    out = subprocess.run(
        ["redis-cli", "-p", str(server.port), "info", "commandstats"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stats = {}
    for line in out.splitlines():
        if line.startswith("cmdstat_") and not line.startswith(("cmdstat_info:", "cmdstat_client|setname:")):
            name, _, rest = line[len("cmdstat_") :].partition(":")
            fields = dict(part.split("=", 1) for part in rest.split(","))
            stats[name] = (int(fields["calls"]), int(fields["usec"]))
    return stats


def server_cost(server: LocalServer) -> tuple[int, float]:
    """(commands' µs from INFO commandstats, the server process's CPU seconds from INFO cpu)."""
    out = subprocess.run(
        ["redis-cli", "-p", str(server.port), "info", "all"], capture_output=True, text=True, check=True
    ).stdout
    cpu = 0.0
    for line in out.splitlines():
        if line.startswith(("used_cpu_sys:", "used_cpu_user:")):
            cpu += float(line.split(":", 1)[1])
    usec = sum(usec for _, usec in commandstats(server).values())
    return usec, cpu


def measured(server: LocalServer, run: Any) -> tuple[Any, int, float, float]:
    """(what run() returned, server µs, server CPU s, wall s)."""
    us0, cpu0 = server_cost(server)
    start = time.perf_counter()
    result = run()
    wall = time.perf_counter() - start
    us1, cpu1 = server_cost(server)
    return result, us1 - us0, cpu1 - cpu0, wall


def memkeys(server: LocalServer) -> tuple[Any, int, float, float]:
    argv = ["redis-cli", "-p", str(server.port), "--memkeys"]
    return measured(server, lambda: subprocess.run(argv, check=True, capture_output=True))


def analyse(server: LocalServer, **kwargs: Any) -> tuple[dict[str, Any], int, float, float]:
    """(report JSON, server µs, server CPU s, wall s) of one analysis."""
    inst = InstanceConfig("bench", parse_target(server.url))
    return measured(server, lambda: asyncio.run(analyse_instance(inst, **kwargs)).to_json())


def errors(report: dict[str, Any], exact: dict[str, int]) -> tuple[float, int]:
    """(worst per-prefix bytes error, exact values inside the 95% interval)."""
    worst, inside = 0.0, 0
    for p in report["prefixes"]:
        truth = exact[p["prefix"]]
        worst = max(worst, abs(p["bytes_est"] / truth - 1))
        inside += p["bytes_ci95"][0] <= truth <= p["bytes_ci95"][1]
    return worst, inside


def main() -> None:
    spec, commands = five_prefixes(SCALE)
    keys = sum(len(p.keys) for p in spec.values())
    with redis_server() as server:
        pipe_into_redis(server.port, commands)
        del commands
        exact = {pattern: memory_usage(server.port, p.keys) for pattern, p in spec.items()}
        print(f"{keys:,} keys in {len(spec)} prefixes; exact bytes from a full MEMORY USAGE pass")

        # The machine's load drifts: each row is measured next to a --memkeys run of its own.
        print(
            "\nserver time (commandstats µs) and server CPU (INFO cpu),"
            " each against a --memkeys run next to it"
        )
        head = f"{'':<28} {'server s':>9} {'÷ memkeys':>10} {'CPU s':>7} {'÷ memkeys':>10}"
        print(f"{head} {'worst err':>10} {'in 95% CI':>10} {'wall s':>7}")
        for label, kwargs in (
            ("all names, sample 10k", {"sample": 10_000}),
            ("names stopped at 5%, 10k", {"sample": 10_000, "max_scan": keys // 20}),
            ("names stopped at 5%, 5k", {"sample": 5_000, "max_scan": keys // 20}),
            ("names stopped at 3%, 5k", {"sample": 5_000, "max_scan": keys * 3 // 100}),
        ):
            _, ref_us, ref_cpu, ref_wall = memkeys(server)
            ref = f"{'  redis-cli --memkeys':<28} {ref_us / 1e6:>9.3f} {'1':>9}x {ref_cpu:>7.2f} {'1':>9}x"
            print(f"{ref} {'':>21} {ref_wall:>7.1f}")
            runs = [analyse(server, rate=0, values_per_prefix=0, seed=s, **kwargs) for s in SEEDS]
            us = statistics.median(r[1] for r in runs)
            cpu = statistics.median(r[2] for r in runs)
            worst = max(errors(r[0], exact)[0] for r in runs)
            inside = sum(errors(r[0], exact)[1] for r in runs)
            wall = statistics.median(r[3] for r in runs)
            print(
                f"{label:<28} {us / 1e6:>9.3f} {us / ref_us:>9.3f}x {cpu:>7.2f} {cpu / ref_cpu:>9.3f}x "
                f"{worst:>10.1%} {inside:>4}/{len(spec) * len(runs):<5} {wall:>7.1f}"
            )

        before_stats = commandstats(server)
        report = analyse(server, rate=0, seed=SEEDS[0])[0]
        after_stats = commandstats(server)
        print("\nserver time per call in one analysis (all names, 10k sample, values read)")
        for name, (calls, usec) in sorted(after_stats.items()):
            d_calls, d_usec = (
                calls - before_stats.get(name, (0, 0))[0],
                usec - before_stats.get(name, (0, 0))[1],
            )
            if d_calls:
                per = f"{d_usec / report['keys_scanned']:.2f} µs per name" if name == "scan" else ""
                cost = f"{d_usec / 1e3:>9.1f} ms {d_usec / d_calls:>7.2f} µs/call"
                print(f"  {name:<18} {d_calls:>9,} calls {cost}  {per}")

        print(f"\naccuracy against sample size (all names counted, {len(SEEDS)} seeds each)")
        print(f"{'sample':>8} {'worst err':>10} {'median err':>11} {'in 95% CI':>10}")
        for sample in (1_000, 3_000, 10_000, 30_000):
            runs = [analyse(server, rate=0, values_per_prefix=0, seed=s, sample=sample)[0] for s in SEEDS]
            errs = [errors(r, exact) for r in runs]
            per_prefix = [abs(p["bytes_est"] / exact[p["prefix"]] - 1) for r in runs for p in r["prefixes"]]
            print(
                f"{sample:>8,} {max(e for e, _ in errs):>10.2%} {statistics.median(per_prefix):>11.2%} "
                f"{sum(i for _, i in errs):>4}/{len(spec) * len(runs)}"
            )

        with ProbeThread(server.port) as idle:
            time.sleep(2.0)
        # The defaults (20,000 operations/s, a 10k sample, values read), as a user runs it: in its
        # own process, so the probe thread here is not slowed by the walk's client CPU.
        with ProbeThread(server.port) as busy:
            out, us, cpu, _ = measured(
                server,
                lambda: (
                    subprocess.run(
                        [sys.executable, "-m", "cachetop", "keyspace", "--json", server.url],
                        check=True,
                        capture_output=True,
                        env={**os.environ, "XDG_STATE_HOME": tempfile.mkdtemp(prefix="cachetop-bench-")},
                    ).stdout
                ),
            )
        (report,) = json.loads(out)["instances"]
        wall = report["elapsed_s"]
        print(
            f"\ndefault budget: {keys / wall:,.0f} keys/s analysed ({wall:.1f} s, server {us / 1e6:.2f} s, "
            f"CPU {cpu:.2f} s, "
            f"worst err {errors(report, exact)[0]:.1%}); probe p99 {busy.p99_ms():.3f} ms during the run vs "
            f"{idle.p99_ms():.3f} ms idle ({busy.p99_ms() / idle.p99_ms():.2f}x)"
        )


if __name__ == "__main__":
    main()

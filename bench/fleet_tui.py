"""The dashboard on a large fleet, in a real terminal: time to the first frame and to the rows,
time from `q` (or SIGTERM) to exit, and peak RSS, for 3,000 and 10,000 instances against 100
measured in the same run (medians over --runs).

Each fleet is 40% redis (--servers redis-servers, databases 0-15), 10% memcached (one
memcached, -c 4096) and 50% a closed port (DOWN), polled every second, `cachetop -c FILE` in
tmux at 80x24. Needs tmux. Spread over several servers on purpose: every poll reads the
server's CLIENT LIST, and thousands of instances on one server make it thousands of lines long.

    .venv/bin/python bench/fleet_tui.py [--sizes 100,3000,10000] [--runs 3] [--how q|term] [--servers 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from cachetop.servers import LocalServer, free_port, memcached_server, redis_server

CACHETOP = Path(sys.executable).parent / "cachetop"


def write_config(path: Path, n: int, redis: list[LocalServer], memcached: LocalServer, closed: int) -> None:
    parts = ['[settings]\ninterval = "1s"\n']
    for i in range(n):
        share = i % 10
        if share < 4:
            url = f"{redis[i % len(redis)].url}/{i % 16}"
        elif share < 5:
            url = memcached.url
        else:
            url = f"redis://127.0.0.1:{closed}/0"
        parts.append(f'[[instance]]\nname = "node-{i:05d}"\nurl = "{url}"\n')
    path.write_text("\n".join(parts))


def screen(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
    ).stdout


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"
    except OSError:
        return True


def one_run(
    config: Path, n: int, how: str, settle_s: float, workdir: Path, cachetop: str
) -> dict[str, float]:
    session = f"bench-{uuid.uuid4().hex[:8]}"
    pid_file = workdir / f"{session}.pid"
    command = f"echo $$ > {pid_file}; exec env TERM=xterm-256color {cachetop} -c {config}"
    start = time.monotonic()
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "sh", "-c", command], check=True
    )
    out: dict[str, float] = {}
    try:
        while not pid_file.exists() or not pid_file.read_text().strip():
            time.sleep(0.01)
        pid = int(pid_file.read_text())
        peak = 0.0
        full_row = f"fleet ({n:,})"
        while "rows_s" not in out and time.monotonic() - start < 180:
            text = screen(session)
            peak = max(peak, rss_mb(pid))
            if "first_frame_s" not in out and "cachetop" in text:
                out["first_frame_s"] = time.monotonic() - start
            if full_row in text:
                out["rows_s"] = time.monotonic() - start
            time.sleep(0.02)
        settle_end = time.monotonic() + settle_s  # polling the whole fleet for a while
        while time.monotonic() < settle_end:
            peak = max(peak, rss_mb(pid))
            time.sleep(0.2)
        out["rss_mb"] = peak
        asked = time.monotonic()
        if how == "q":
            subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        else:
            os.kill(pid, signal.SIGTERM)
        while not gone(pid) and time.monotonic() - asked < 120:
            time.sleep(0.01)
        out["quit_s"] = time.monotonic() - asked
        if not gone(pid):  # still there after 120 s: an old build that ignores q
            os.kill(pid, signal.SIGKILL)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,3000,10000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--how", choices=("q", "term"), default="q")
    parser.add_argument("--servers", type=int, default=20, help="redis-servers the fleet's redis share is on")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of polling before quitting")
    parser.add_argument(
        "--cachetop",
        default=str(CACHETOP),
        help="the command to measure (another build: 'env PYTHONPATH=/path/to/it .venv/bin/cachetop')",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    redis = [redis_server(extra=["--maxclients", "20000"]) for _ in range(args.servers)]
    memcached = memcached_server(extra=["-c", "4096"])
    closed = free_port()
    results: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}
    try:
        with tempfile.TemporaryDirectory(prefix="cachetop-bench-") as tmp:
            workdir = Path(tmp)
            for n in sizes:
                config = workdir / f"fleet-{n}.toml"
                write_config(config, n, redis, memcached, closed)
                for _ in range(args.runs):
                    results[n].append(one_run(config, n, args.how, args.settle, workdir, args.cachetop))
    finally:
        for server in redis:
            server.cleanup()
        memcached.cleanup()
    reference = sizes[0]

    def med(n: int, key: str) -> float:
        return statistics.median(r.get(key, float("nan")) for r in results[n])

    print(f"median of {args.runs} runs; quit by {args.how}; reference: {reference} instances")
    print(f"{'instances':>9} {'first frame':>12} {'rows':>8} {'quit':>8} {'peak RSS':>10} {'RSS/inst':>9}")
    for n in sizes:
        per_instance = (med(n, "rss_mb") - med(reference, "rss_mb")) * 1024 / max(1, n - reference)
        print(
            f"{n:>9,} {med(n, 'first_frame_s'):>11.2f}s {med(n, 'rows_s'):>7.2f}s {med(n, 'quit_s'):>7.2f}s"
            f" {med(n, 'rss_mb'):>8.0f}MB {per_instance if n != reference else 0:>7.0f}KB"
        )


if __name__ == "__main__":
    main()

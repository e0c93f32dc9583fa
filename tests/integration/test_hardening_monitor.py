"""A cachetop that stops running must not hurt the server (issue 12): a real Redis under load, the
installed `cachetop hotkeys` in a subprocess, real SIGSTOP / SIGTSTP / SIGCONT / SIGKILL.

What is checked from the outside, in the server's own CLIENT LIST and INFO: the MONITOR client of
a stopped cachetop disappears within the guardian's bound while its output buffer stays under a
stated cap; a caught stop signal ends MONITOR before the process stops; sampling comes back
after SIGCONT; a SIGKILLed cachetop leaves neither a MONITOR nor its guardian behind; and without
a guardian, MONITOR is never turned on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis as redis_py
import trustme

from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.hotkeys.collector import HotKeyCollector
from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.conn import parse_client_list
from cachetop.hotkeys.guardian_link import GuardianLink, shared_guardian
from cachetop.servers import LocalServer, free_port
from tests.conftest import until, wait_until
from tests.integration.test_hotkeys_redis import inst_for, monitor_clients

CACHETOP = str(Path(sys.executable).with_name("cachetop"))
STALL_S = 0.5  # the default [hotkeys] monitor_stall
# The monitor client must be gone this long after SIGSTOP: the stall bound, then the guardian's
# connect + CLIENT KILL, with room for a loaded 2-core machine.
GONE_WITHIN_S = STALL_S + 1.0
# What the server may buffer meanwhile. Measured here under the load below: about 3 MB/s of
# MONITOR output reaches omem once the reader stops, so a second costs a few MB; the old code
# let it grow without end (13.6 MB after 4 s here; 157 MB in 7 s on a faster machine).
OMEM_CAP = 16 << 20


@pytest.fixture
def busy_redis(make_redis: Callable[..., LocalServer]) -> Iterator[LocalServer]:
    """A 64 MB allkeys-lru Redis (the issue's setup) with redis-benchmark writing to it: bounded
    in count, stopped at the end of the test."""
    if shutil.which("redis-benchmark") is None:
        pytest.skip("redis-benchmark is not installed")
    server = make_redis("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
    load = subprocess.Popen(
        [
            *("redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port), "-t", "set,get"),
            *("-n", "5000000", "-P", "16", "-d", "100", "-r", "100000", "-q"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    r = redis_py.Redis(port=server.port)
    wait_until(lambda: r.dbsize() > 1000, 10, "the load to start")
    yield server
    load.kill()
    load.wait()


def start_hotkeys(server: LocalServer, *args: str) -> subprocess.Popen[bytes]:
    # Its own process group in this session (not a new session): a process group with no parent
    # in the session is orphaned, and Linux discards SIGTSTP for those.
    return subprocess.Popen(
        [CACHETOP, "hotkeys", server.url, "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
    )


def stopped(pid: int) -> bool:
    """The process is stopped (state T in /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def commandstat(r: redis_py.Redis, name: str) -> int:
    return int(r.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0))


def watch_monitor_go(r: redis_py.Redis, client_id: bytes, deadline_s: float) -> tuple[float, int]:
    """Polls CLIENT LIST until the monitor client is gone: (seconds it took, largest omem seen)."""
    start = time.monotonic()
    max_omem = 0
    while True:
        raw = r.execute_command("CLIENT", "LIST")
        mine = [c for c in parse_client_list(raw) if c.get(b"id") == client_id]
        if not mine:
            return time.monotonic() - start, max_omem
        max_omem = max(max_omem, int(mine[0][b"omem"]))
        if time.monotonic() - start > deadline_s:
            pytest.fail(f"the MONITOR client was still there {deadline_s}s later (omem {max_omem})")
        time.sleep(0.01)


def finish(proc: subprocess.Popen[bytes]) -> dict:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    [inst] = json.loads(out)["instances"]
    return inst


def test_sigstop_the_guardian_ends_monitor_in_time_and_sampling_resumes(busy_redis: LocalServer) -> None:
    r = redis_py.Redis(port=busy_redis.port)
    proc = start_hotkeys(busy_redis, "--duration", "20")
    try:
        [mon] = wait_until(lambda: monitor_clients(busy_redis.port), 15, "the MONITOR client")
        os.kill(proc.pid, signal.SIGSTOP)
        wait_until(lambda: stopped(proc.pid), 5, "cachetop to stop")
        took, max_omem = watch_monitor_go(r, mon[b"id"], deadline_s=5)
        assert took < GONE_WITHIN_S, f"gone after {took:.2f}s"
        assert max_omem < OMEM_CAP, f"omem reached {max_omem}"
        assert commandstat(r, "client|kill") == 1  # the guardian's, while cachetop was stopped
        assert stopped(proc.pid)
        os.kill(proc.pid, signal.SIGCONT)
        [again] = wait_until(lambda: monitor_clients(busy_redis.port), 8, "sampling to resume")
        assert again[b"id"] != mon[b"id"]
        inst = finish(proc)
    finally:
        proc.kill()
        proc.wait()
    assert (inst["source"], inst["error"]) == ("monitor", None)
    assert inst["total_events"] > 0
    wait_until(lambda: not monitor_clients(busy_redis.port), 5, "the MONITOR client to go")


def test_sigtstp_ends_monitor_before_the_process_stops(busy_redis: LocalServer, tmp_path: Path) -> None:
    # A stall bound far beyond the test: whatever ends the MONITOR here is the signal handler.
    config = tmp_path / "cachetop.toml"
    config.write_text('[hotkeys]\nmonitor_stall = "10s"\n')
    r = redis_py.Redis(port=busy_redis.port)
    proc = start_hotkeys(busy_redis, "--duration", "20", "-c", str(config))
    try:
        [mon] = wait_until(lambda: monitor_clients(busy_redis.port), 15, "the MONITOR client")
        os.kill(proc.pid, signal.SIGTSTP)
        wait_until(lambda: stopped(proc.pid), 5, "cachetop to stop")
        _, max_omem = watch_monitor_go(r, mon[b"id"], deadline_s=1)
        assert max_omem < OMEM_CAP
        assert commandstat(r, "client|kill") == 0  # not the guardian: the socket was shut first
        assert stopped(proc.pid) and not monitor_clients(busy_redis.port)
        os.kill(proc.pid, signal.SIGCONT)
        [again] = wait_until(lambda: monitor_clients(busy_redis.port), 8, "sampling to resume")
        assert again[b"id"] != mon[b"id"]
        inst = finish(proc)
    finally:
        proc.kill()
        proc.wait()
    assert (inst["source"], inst["error"]) == ("monitor", None)


def test_sigkill_leaves_no_monitor_and_no_guardian(redis: LocalServer) -> None:
    proc = start_hotkeys(redis, "--duration", "60")
    try:
        wait_until(lambda: monitor_clients(redis.port), 15, "the MONITOR client")
        [guardian] = children(proc.pid)
        assert b"guardian.py" in Path(f"/proc/{guardian}/cmdline").read_bytes()
        # Its own session: Ctrl-Z to cachetop's process group never reaches it.
        assert os.getsid(guardian) == guardian != os.getsid(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    finally:
        proc.kill()
    wait_until(lambda: not monitor_clients(redis.port), 5, "the MONITOR client to go")
    wait_until(lambda: not alive(guardian), 5, "the guardian to exit")


async def test_no_guardian_no_monitor(redis: LocalServer) -> None:
    # A guardian that cannot run: MONITOR is never turned on, and the status line says why.
    broken = GuardianLink([sys.executable, "-c", "import sys; sys.exit(3)"])
    collector = HotKeyCollector(
        inst_for(redis, "monitor"),
        HotKeySettings(big_keys=False),
        monitor_options={"guardian": broken},
    )
    await collector.start()
    try:
        await until(lambda: collector.snapshot().status == "error", what="the refusal")
        view = collector.snapshot()
    finally:
        await collector.stop()
    assert view.error == "MONITOR is off: its guardian process exited (status 3)"
    r = redis_py.Redis(port=redis.port)
    assert commandstat(r, "monitor") == 0


async def test_a_guardian_that_dies_ends_the_monitor_at_once(redis: LocalServer) -> None:
    link = GuardianLink()
    collector = HotKeyCollector(
        inst_for(redis, "monitor"),
        HotKeySettings(monitor_on=600, monitor_off=1, big_keys=False),
        monitor_options={"guardian": link},
    )
    await collector.start()
    try:
        await until(lambda: monitor_clients(redis.port), what="the MONITOR client")
        assert link.proc is not None
        link.proc.kill()
        await until(lambda: not monitor_clients(redis.port), 2, "MONITOR to end with its guardian")
        await until(lambda: collector.snapshot().status == "error", 2, "the error")
        view = collector.snapshot()
    finally:
        await collector.stop()
        link.close()
    assert view.error == "MONITOR is off: its guardian process exited (status -9)"


async def test_a_stalled_event_loop_is_a_stall_too(redis: LocalServer) -> None:
    # No signal at all: the loop that reads MONITOR output is blocked (a long synchronous step),
    # so the heartbeat stops and the guardian ends the MONITOR; the next phase starts after it.
    r = redis_py.Redis(port=redis.port)
    collector = HotKeyCollector(
        inst_for(redis, "monitor"), HotKeySettings(monitor_on=600, monitor_off=1, big_keys=False)
    )
    await collector.start()
    try:
        [mon] = await until(lambda: monitor_clients(redis.port), what="the MONITOR client")
        blocked_until = time.monotonic() + STALL_S + 1.0
        gone = None
        while time.monotonic() < blocked_until:  # blocks the event loop on purpose
            if gone is None and not monitor_clients(redis.port):
                gone = time.monotonic()
            time.sleep(0.01)
        assert gone is not None, "the guardian did not end the MONITOR of a stalled reader"
        await until(lambda: collector.sampler.stats.stops_for_stall == 1, 3, "the stall report")
        [again] = await until(lambda: monitor_clients(redis.port), 5, "the next phase")
        assert again[b"id"] != mon[b"id"]
        await until(lambda: collector.snapshot().status == "sampling", what="the next phase in the view")
        assert collector.snapshot().detail == (
            "the guardian ended MONITOR once (not read for 0.5s); MONITOR 600s on / 1s off,"
            " at most 50,000 lines; server bound on its buffer: none"
        )
    finally:
        await collector.stop()
    assert commandstat(r, "client|kill") == 1
    # The guardian's commands are cachetop's own: the poller leaves them out of ops/s.
    assert collector.own_command_counts["client|kill"] == 1


def test_the_password_reaches_the_guardian_only_through_its_pipe(
    make_redis: Callable[..., LocalServer],
) -> None:
    server = make_redis("--requirepass", "Hunter2secret")
    url = f"redis://:Hunter2secret@127.0.0.1:{server.port}"
    proc = subprocess.Popen(
        [CACHETOP, "hotkeys", url, "--duration", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    r = redis_py.Redis(port=server.port, password="Hunter2secret")

    def monitors() -> list[dict[bytes, bytes]]:
        raw = r.execute_command("CLIENT", "LIST")
        return [c for c in parse_client_list(raw) if c.get(b"cmd") == b"monitor"]

    try:
        wait_until(monitors, 15, "the MONITOR client")
        [guardian] = children(proc.pid)
        assert b"Hunter2secret" not in Path(f"/proc/{guardian}/cmdline").read_bytes()
        assert b"Hunter2secret" not in Path(f"/proc/{guardian}/environ").read_bytes()
        # ...and it can log in with it: stop cachetop, and the guardian ends the MONITOR.
        os.kill(proc.pid, signal.SIGSTOP)
        wait_until(lambda: not monitors(), GONE_WITHIN_S + 1, "the guardian to end the MONITOR")
        assert commandstat(r, "client|kill") == 1
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    ("extra", "shown"),
    [
        ((), "none"),
        (("--client-output-buffer-limit", "normal 32mb 0 0"), "32.0M (client-output-buffer-limit normal)"),
        (("--maxmemory-clients", "10%"), "maxmemory-clients 10%"),
    ],
)
async def test_the_status_line_says_what_bounds_monitor_on_the_server(
    make_redis: Callable[..., LocalServer], extra: tuple[str, ...], shown: str
) -> None:
    # What still protects a server when cachetop and its guardian freeze together (a suspended VM).
    server = make_redis(*extra)
    collector = HotKeyCollector(inst_for(server, "monitor"), HotKeySettings(big_keys=False))
    await collector.start()
    try:
        await until(lambda: collector.snapshot().status == "sampling", what="a MONITOR phase")
        detail = collector.snapshot().detail
    finally:
        await collector.stop()
    assert detail == f"MONITOR 1s on / 9s off, at most 50,000 lines; server bound on its buffer: {shown}"


async def test_phases_that_run_their_course_do_not_wait_on_the_guardian(redis: LocalServer) -> None:
    # Only a MONITOR that something else ended asks the guardian whether it was it; and one
    # guardian serves every phase (no process per phase).
    link = shared_guardian()
    collector = HotKeyCollector(
        inst_for(redis, "monitor"), HotKeySettings(monitor_on=0.2, monitor_off=0.1, big_keys=False)
    )
    await collector.start()
    try:
        await until(
            lambda: collector.sampler is not None and collector.sampler.stats.phases >= 6, 4, "6 phases"
        )
        stats = collector.sampler.stats
    finally:
        await collector.stop()
    assert (stats.stops_for_stall, stats.stops_for_suspend) == (0, 0)
    assert shared_guardian() is link and link.alive()


async def test_the_guardian_logs_in_with_tls_and_a_password(
    tmp_path: Path, make_redis: Callable[..., LocalServer]
) -> None:
    # The guardian opens its own connection only when it must act: with the instance's CA, TLS
    # verification on, and its password (which reached it through the pipe).
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    for i, pem in enumerate(cert.cert_chain_pems):
        pem.write_to_path(str(cert_file), append=i > 0)
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    make_redis(
        *("--port", "0", "--tls-port", str(port), "--requirepass", "s3cret?x"),
        *("--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file)),
        *("--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "no"),
        port=port,
    )
    inst = InstanceConfig(
        name="tls",
        target=parse_target(f"rediss://127.0.0.1:{port}"),
        hotkeys="monitor",
        tls_ca_file=str(ca_file),
    )
    inst = replace(inst, target=replace(inst.target, password="s3cret?x"))
    r = redis_py.Redis(host="127.0.0.1", port=port, password="s3cret?x", ssl=True, ssl_ca_certs=str(ca_file))

    def monitors() -> list[dict[bytes, bytes]]:
        return [
            c for c in parse_client_list(r.execute_command("CLIENT", "LIST")) if c.get(b"cmd") == b"monitor"
        ]

    collector = HotKeyCollector(inst, HotKeySettings(monitor_on=600, monitor_off=1, big_keys=False))
    await collector.start()
    try:
        await until(monitors, what="the MONITOR client")
        time.sleep(STALL_S + 1.0)  # blocks the event loop on purpose: the reader stalls
        assert not monitors()
        await until(lambda: collector.sampler.stats.stops_for_stall == 1, 3, "the stall report")
    finally:
        await collector.stop()
    assert commandstat(r, "client|kill") == 1
    assert collector.own_command_counts["client|kill"] == 1


def test_the_guardian_kills_only_a_cachetop_monitor_under_that_id(redis: LocalServer) -> None:
    """After a restart, IDs start again from 1: the ID the guardian was armed with may then be an
    application's connection. It looks the client up first and leaves anything but our MONITOR."""
    from cachetop.hotkeys.guardian import kill_monitor

    def mon_ids(port: int) -> set[int]:
        return {int(c[b"id"]) for c in monitor_clients(port)}

    spec = {"host": "127.0.0.1", "port": redis.port, "timeout": 2.0}
    app = redis_py.Redis(port=redis.port, driver_info=None)
    app_id = app.client_id()
    assert kill_monitor({**spec, "client_id": app_id}) == ("gone", 2, "")
    assert app.ping() is True  # still connected: the same connection answers
    assert app.client_id() == app_id

    # A MONITOR that is not cachetop's (someone's redis-cli) is not ours to end either.
    theirs = redis_py.Redis(port=redis.port, driver_info=None)
    theirs_id = theirs.client_id()
    with theirs.monitor():
        wait_until(lambda: mon_ids(redis.port) == {theirs_id}, what="their MONITOR")
        assert kill_monitor({**spec, "client_id": theirs_id}) == ("gone", 2, "")
        assert mon_ids(redis.port) == {theirs_id}

    ours = redis_py.Redis(port=redis.port, driver_info=None, client_name="cachetop-hotkeys-monitor")
    ours_id = ours.client_id()
    with ours.monitor():
        wait_until(lambda: mon_ids(redis.port) == {ours_id}, what="our MONITOR")
        assert kill_monitor({**spec, "client_id": ours_id}) == ("killed", 3, "")
        wait_until(lambda: not mon_ids(redis.port), what="our MONITOR gone")
    app.close()

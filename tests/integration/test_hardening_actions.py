"""Issue 12: destructive actions are all-or-nothing where promised, and always accounted for.

Against real servers and real faults: a real 3-master Redis Cluster with a master killed
(SIGKILL) or hung (SIGSTOP) before or during an evict, real SIGTERM/SIGHUP sent to a running
`cachetop evict`, and audit logs that truly cannot be written as root (a full tmpfs, /dev/full).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.actions.audit import AUDIT_FILE, AuditError, AuditLog
from cachetop.actions.evict import EvictRequest, EvictResult, RedisEvictor, node_lines, summary
from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.servers import LocalServer
from tests.cluster_fixture import RedisCluster, load_keys, running_cluster
from tests.conftest import TinyFs, wait_until

SESSIONS = [b"sess:%d" % i for i in range(30_000)]
USERS = [b"user:%d" % i for i in range(3_000)]


def instance(url: str) -> InstanceConfig:
    return InstanceConfig(name="cache-1", target=parse_target(url))


def env_for(state: Path) -> dict[str, str]:
    return {**os.environ, "XDG_STATE_HOME": str(state), "COLUMNS": "100"}


def cachetop(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cachetop", *args],
        capture_output=True,
        text=True,
        env=env_for(state),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def audit_path(state: Path) -> Path:
    return state / "cachetop" / "audit.jsonl"


def audit_lines(state: Path) -> list[dict[str, object]]:
    path = audit_path(state)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def dbsize(port: int) -> int:
    return int(redis_py.Redis(port=port, socket_timeout=5).dbsize())


@pytest.fixture
def loaded_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    with running_cluster(tmp_path / "cluster") as cluster:
        cluster.load(SESSIONS)
        cluster.load(USERS)
        yield cluster


def by_slot_order(cluster: RedisCluster) -> list[LocalServer]:
    """The masters in the order the evict walks them (by first slot); the first is the seed
    (`--cluster create` gives the first address the first slots), so the others may fail."""
    ranges = cluster.slot_ranges()
    return sorted(cluster.masters, key=lambda m: ranges[m.port][0])


# --- a failing master: nothing is removed anywhere, and the report says why --------------------


def test_cluster_evict_with_a_dead_master_removes_nothing(
    loaded_cluster: RedisCluster, tmp_path: Path
) -> None:
    walk = by_slot_order(loaded_cluster)
    dead, live = walk[2], walk[:2]  # the last master walked: before the fix, the first two were emptied
    before = {m.port: dbsize(m.port) for m in live}
    dead.kill()  # the cluster still lists it as a healthy master (cluster-node-timeout is 15 s)

    out = cachetop(
        "evict", loaded_cluster.url, "--pattern", "sess:*", "--yes", "--rate", "0", "--json", state=tmp_path
    )

    assert out.returncode == 1, out.stderr
    assert {m.port: dbsize(m.port) for m in live} == before  # not one key removed anywhere
    report = json.loads(out.stdout)
    assert (report["evicted"], report["complete"], report["cancelled"]) == (0, False, False)
    nodes = report["nodes"]
    assert [nodes[m.address]["state"] for m in walk] == ["not_started", "not_started", "failed"]
    assert [nodes[m.address]["evicted"] for m in walk] == [0, 0, 0]
    error = nodes[dead.address]["error"]
    assert error.startswith(f"{dead.address}: ") and "Connection refused" in error
    assert error.endswith("(checked before evicting: nothing was removed)")
    assert report["error"] == error
    assert f"cachetop: {error}" in out.stderr and "Traceback" not in out.stderr
    entries = audit_lines(tmp_path)
    assert [e["outcome"] for e in entries] == ["intent", "failed"]
    assert (entries[1]["evicted"], entries[1]["complete"]) == (0, False)
    assert entries[1]["nodes"][dead.address]["state"] == "failed"  # type: ignore[index]


def test_cluster_evict_with_a_hung_master_removes_nothing(loaded_cluster: RedisCluster) -> None:
    walk = by_slot_order(loaded_cluster)
    hung = walk[1]
    before = loaded_cluster.dbsize()
    assert hung.pid is not None
    os.kill(hung.pid, signal.SIGSTOP)  # accepts connections (the kernel does) but never answers
    try:
        result = RedisEvictor(instance(loaded_cluster.url), timeout=1, rate=0).run(
            EvictRequest(pattern=b"sess:*"), dry_run=False
        )
    finally:
        os.kill(hung.pid, signal.SIGCONT)
    assert loaded_cluster.dbsize() == before
    assert (result.evicted, result.complete) == (0, False)
    states = {a: r.state for a, r in result.node_reports.items()}
    assert states == {walk[0].address: "not_started", hung.address: "failed", walk[2].address: "not_started"}
    assert result.error is not None and result.error.startswith(f"{hung.address}: ")
    assert "checked before evicting: nothing was removed" in result.error
    lines = node_lines(result)
    assert lines[0].split() == [walk[0].address, "not", "started", "0", "evicted"]
    assert lines[1].split()[:4] == [hung.address, "FAILED", "0", "evicted:"]


def test_cluster_master_hanging_mid_way_is_reported_exactly(loaded_cluster: RedisCluster) -> None:
    walk = by_slot_order(loaded_cluster)
    first, hung, last = walk
    sess_on = {m.port: len(redis_py.Redis(port=m.port).keys("sess:*")) for m in walk}
    stopped: list[int] = []

    def progress(result: EvictResult) -> None:
        # Between two batches of the second master (nothing in flight), the master hangs.
        if not stopped and result.node(hung.address).evicted >= 1000:
            assert hung.pid is not None
            os.kill(hung.pid, signal.SIGSTOP)
            stopped.append(hung.pid)

    try:
        result = RedisEvictor(
            instance(loaded_cluster.url), timeout=1, rate=0, batch=500, progress=progress
        ).run(EvictRequest(pattern=b"sess:*"), dry_run=False)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert stopped, "the second master was never reached"
    reports = result.node_reports
    assert (reports[first.address].state, reports[first.address].evicted) == ("done", sess_on[first.port])
    assert reports[hung.address].state == "failed" and reports[hung.address].evicted >= 1000
    in_flight = reports[hung.address].uncertain
    assert 0 < in_flight <= 1000  # the batch sent to the hung master (SCAN COUNT is a hint)
    assert (reports[last.address].state, reports[last.address].evicted) == ("not_started", 0)
    assert result.evicted == sess_on[first.port] + reports[hung.address].evicted
    assert not result.complete and result.error is not None and hung.address in result.error
    # What the report claims is what happened: the last master untouched; on the hung one, the
    # batch in flight runs when it resumes, exactly the "may be gone too" the report names.
    assert len(redis_py.Redis(port=last.port).keys("sess:*")) == sess_on[last.port]
    assert len(redis_py.Redis(port=first.port).keys("sess:*")) == 0
    gone = reports[hung.address].evicted + reports[hung.address].uncertain
    wait_until(
        lambda: sess_on[hung.port] - len(redis_py.Redis(port=hung.port).keys("sess:*")) == gone,
        what="the resumed master to run the batch in flight",
    )
    text = summary(result, "cache-1")
    assert (
        text.startswith(f"evicted {result.evicted:,} of ")
        and f"{in_flight:,} more keys were in flight" in text
    )
    assert [line.split()[1] for line in node_lines(result)] == ["done", "FAILED", "not"]


# --- SIGTERM and SIGHUP end an evict like Ctrl-C: exact count, audit outcome -------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_ends_an_evict_cleanly_with_the_exact_count(
    sig: signal.Signals, redis: LocalServer, tmp_path: Path
) -> None:
    total = 20_000
    load_keys(redis.port, [b"k:%d" % i for i in range(total)])
    args = ["evict", redis.url, "--pattern", "k:*", "--yes", "--rate", "2000", "--batch", "100", "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachetop", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env_for(tmp_path),
    )
    try:
        wait_until(
            lambda: (
                [e["outcome"] for e in audit_lines(tmp_path)] == ["intent"] and dbsize(redis.port) < total
            ),
            deadline_s=15,
            what="the intent line and the first deletes",
        )
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    gone = total - dbsize(redis.port)
    assert proc.returncode == 1, stderr
    assert f"{sig.name}: cancelling after the current batch" in stderr and "Traceback" not in stderr
    report = json.loads(stdout)
    assert (report["cancelled"], report["complete"]) == (True, False)
    assert 0 < report["evicted"] == gone < total  # the count printed is what left the server
    assert report["nodes"] == {redis.address: {"state": "cancelled", "evicted": gone}}
    intent, outcome = audit_lines(tmp_path)
    assert (outcome["outcome"], outcome["signal"], outcome["evicted"]) == ("cancelled", sig.name, gone)
    assert outcome["run"] == intent["run"]


def test_sigterm_text_report_says_removed_exactly(redis: LocalServer, tmp_path: Path) -> None:
    total = 20_000
    load_keys(redis.port, [b"k:%d" % i for i in range(total)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachetop", "evict", redis.url, "--pattern", "k:*", "--yes", "--rate", "2000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env_for(tmp_path),
    )
    try:
        wait_until(lambda: dbsize(redis.port) < total, deadline_s=15, what="the first deletes")
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    gone = total - dbsize(redis.port)
    matched = audit_lines(tmp_path)[-1]["matched"]  # includes the batch scanned but not started
    assert stdout.strip() == (
        f"cancelled: removed exactly {gone:,} keys from 127.0.0.1:{redis.port} (of {matched:,} matched)"
    )
    assert audit_lines(tmp_path)[-1]["evicted"] == gone


# --- an audit log that cannot be written stops the evict before anything is removed -----------


def _audit_on_dev_full(state: Path) -> None:
    audit_path(state).parent.mkdir(parents=True)
    audit_path(state).symlink_to("/dev/full")  # every write: ENOSPC, for root too


def _audit_on_full_tmpfs(tiny_fs: TinyFs) -> Path:
    state = tiny_fs.path / "state"
    (state / "cachetop").mkdir(parents=True)
    tiny_fs.fill()
    return state


@pytest.mark.parametrize("where", ["full tmpfs", "/dev/full"])
def test_evict_refuses_when_the_audit_log_cannot_be_written(
    where: str, redis: LocalServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    load_keys(redis.port, [b"k:%d" % i for i in range(500)])
    if where == "/dev/full":
        state = tmp_path
        _audit_on_dev_full(state)
    else:
        state = _audit_on_full_tmpfs(request.getfixturevalue("tiny_fs"))
    out = cachetop("evict", redis.url, "--pattern", "k:*", "--yes", "--rate", "0", state=state)
    assert out.returncode == 3, out.stderr
    assert dbsize(redis.port) == 500  # nothing removed
    assert out.stderr.strip() == (
        f"cachetop: refused: cannot write the audit log {audit_path(state)}: No space left on device "
        "(free space there, or set state_dir to a writable place); nothing was evicted"
    )
    if where == "full tmpfs":
        assert audit_path(state).read_bytes() == b""  # no half line either


def test_memcached_evict_refuses_when_the_audit_log_cannot_be_written(
    memcached: LocalServer, tmp_path: Path
) -> None:
    from pymemcache.client.base import Client

    client = Client(("127.0.0.1", memcached.port))
    client.set("sess:1", b"x", noreply=False)
    _audit_on_dev_full(tmp_path)
    out = cachetop("evict", memcached.url, "--key", "sess:1", "--yes", "--json", state=tmp_path)
    assert out.returncode == 3, out.stderr
    assert client.get("sess:1") == b"x"
    assert "refused: cannot write the audit log" in out.stderr and "nothing was evicted" in out.stderr
    assert json.loads(out.stdout)["evicted"] == 0
    client.close()


def test_an_outcome_that_cannot_be_written_is_said_and_fails_the_run(
    redis: LocalServer, tmp_path: Path
) -> None:
    total = 4_000
    load_keys(redis.port, [b"k:%d" % i for i in range(total)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachetop", "evict", redis.url, "--pattern", "k:*", "--yes", "--rate", "4000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env_for(tmp_path),
    )
    try:
        wait_until(lambda: audit_lines(tmp_path), deadline_s=15, what="the intent line")
        intent = audit_path(tmp_path).read_bytes()
        audit_path(tmp_path).unlink()
        audit_path(tmp_path).symlink_to("/dev/full")  # the disk is full from now on
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert json.loads(intent)["outcome"] == "intent"
    assert proc.returncode == 1
    assert stdout.startswith(f"evicted {total:,} of {total:,} matched keys")
    assert dbsize(redis.port) == 0
    assert "cannot write the audit log" in stderr and "this done outcome is not in it" in stderr


def test_sighup_at_the_confirmation_prompt_evicts_nothing(redis: LocalServer, tmp_path: Path) -> None:
    """The terminal closes (SIGHUP) while cachetop asks: it must not go on waiting, nor evict."""
    load_keys(redis.port, [b"k:%d" % i for i in range(50)])
    main, tty = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachetop", "evict", redis.url, "--pattern", "k:*"],
        stdin=tty,
        stdout=subprocess.PIPE,
        stderr=tty,
        env=env_for(tmp_path),
    )
    os.close(tty)
    os.set_blocking(main, False)
    seen = bytearray()
    try:

        def asked() -> bool:
            with contextlib.suppress(BlockingIOError):
                seen.extend(os.read(main, 4096))
            return b"[y/N]" in seen

        wait_until(asked, deadline_s=15, what="the question")
        proc.send_signal(signal.SIGHUP)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        os.close(main)
    assert proc.returncode == 3
    assert dbsize(redis.port) == 50
    entries = audit_lines(tmp_path)
    assert [(e["outcome"], e.get("signal")) for e in entries] == [("declined", "SIGHUP")]


def test_memcached_pool_with_a_dead_server_evicts_nothing(
    make_memcached: Callable[..., LocalServer], tmp_path: Path
) -> None:
    from pymemcache.client.hash import HashClient

    pool = [make_memcached() for _ in range(3)]
    app = HashClient([("127.0.0.1", s.port) for s in pool])
    keys = [f"user:{i}" for i in range(60)]
    for key in keys:
        app.set(key, b"v", noreply=False)
    pool[2].kill()
    args = [arg for key in keys for arg in ("--key", key)]
    out = cachetop("evict", *[s.url for s in pool], *args, "--yes", "--json", state=tmp_path)
    assert out.returncode == 1, out.stderr
    live = HashClient([("127.0.0.1", s.port) for s in pool[:2]])
    still = [k for k in keys if any(live.clients[c].get(k) is not None for c in live.clients)]
    assert len(still) == len([k for k in keys if app.hasher.get_node(k) != f"127.0.0.1:{pool[2].port}"])
    report = json.loads(out.stdout)
    assert (report["evicted"], report["complete"]) == (0, False)
    assert report["nodes"][f"127.0.0.1:{pool[2].port}"]["state"] == "failed"
    assert "checked before evicting: nothing was removed" in report["error"]


def test_a_partly_written_audit_line_is_taken_back(tiny_fs: TinyFs) -> None:
    """On a nearly full disk a line may land only in part: it is taken back, so the log stays
    one whole JSON object per line, and the write is reported as failed."""
    path = tiny_fs.path / AUDIT_FILE
    first = b'{"pad": "' + b"x" * (4096 - 100 - 12) + b'"}\n'  # 100 bytes short of a page
    path.write_bytes(first)
    tiny_fs.fill()  # the audit file's last page still has 100 free bytes: a longer line is cut
    with pytest.raises(AuditError, match="No space left on device"):
        AuditLog(tiny_fs.path).record("evict", None, outcome="intent", what={"pattern": "p" * 300})
    assert path.read_bytes() == first
    tiny_fs.free()
    AuditLog(tiny_fs.path).record("evict", None, outcome="intent", what={"pattern": "p"})
    assert [json.loads(line)["outcome"] for line in path.read_text().splitlines()[1:]] == ["intent"]


def test_a_second_signal_stops_at_once_and_the_result_still_says_cancelled(redis: LocalServer) -> None:
    load_keys(redis.port, [b"k:%d" % i for i in range(5_000)])
    seen: list[EvictResult] = []

    def progress(result: EvictResult) -> None:
        seen[:1] = [result]
        if result.evicted >= 1_000:
            raise KeyboardInterrupt  # what the second Ctrl-C / SIGTERM / SIGHUP raises

    with pytest.raises(KeyboardInterrupt):
        RedisEvictor(instance(redis.url), rate=0, batch=500, progress=progress).run(
            EvictRequest(pattern=b"k:*"), dry_run=False
        )
    result = seen[0]
    assert result.cancelled and not result.complete
    assert result.node_reports[redis.address].state == "cancelled"
    assert result.evicted == 5_000 - dbsize(redis.port)

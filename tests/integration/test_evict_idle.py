"""`evict --idle-over`: keys written, half of them read again later; the idle half, exactly, goes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.actions.evict import EvictRequest, RedisEvictor
from cachetop.servers import LocalServer
from tests.integration.test_evict_redis import audit_lines, cachetop, instance

KEYS = [b"idle:%d" % i for i in range(200)]
READ_AGAIN = KEYS[::2]  # read after the delay: no longer idle
UNREAD = KEYS[1::2]
OTHERS = [b"other:%d" % i for i in range(30)]  # idle too, but outside the pattern


def wait_for(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline_s:g}s waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def kept_in_use(use: Callable[[], object], every_s: float = 0.2) -> Iterator[None]:
    """The application keeps using some keys (a read, or a write on memcached) while the block runs,
    so they stay fresh however long a loaded machine takes to start each cachetop process."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            use()
            stop.wait(every_s)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def idle_times(client: redis_py.Redis, keys: list[bytes]) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.object("idletime", key)
    return [int(t) for t in pipe.execute()]


def write_backdated(client: redis_py.Redis, keys: list[bytes], idle_s: int) -> None:
    """Keys as if written idle_s seconds ago: RESTORE ... IDLETIME sets the server's own idle clock
    for the key (compressed time: no test waits a minute)."""
    client.set(b"template", b"v" * 100)
    payload = client.dump(b"template")
    client.delete(b"template")
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.restore(key, 0, payload, replace=True, idletime=idle_s)
    pipe.execute()


def test_idle_over_in_real_time_counts_then_evicts_exactly_the_unread_half(redis: LocalServer) -> None:
    """Real time, no backdating: written, left until every key's idle clock reads >= 3 s, half read
    again (and kept in use while cachetop runs: a read key's clock reads at most 1 more than the
    seconds since its read, as the LRU clock ticks in whole seconds)."""
    client = redis_py.Redis(port=redis.port)
    client.mset({key: b"x" for key in KEYS})
    wait_for(lambda: min(idle_times(client, KEYS)) >= 3, 10.0, "every key idle for 3 s")
    assert client.mget(READ_AGAIN) == [b"x"] * len(READ_AGAIN)  # read again: idle 0

    with kept_in_use(lambda: client.mget(READ_AGAIN)):  # and again, however slow this machine is now
        evictor = RedisEvictor(instance(redis.url), rate=0)
        dry = evictor.run(EvictRequest(pattern=b"idle:*", idle_over_s=3), dry_run=True)
        assert (dry.matched, dry.evicted, dry.error) == (100, 0, None)
        assert set(dry.examples) <= set(UNREAD)
        # OBJECT IDLETIME counts as a keyspace hit on Redis: the evictor says how many it caused
        # (the Keyspace tab's test holds that against the server's own count).
        assert evictor.idle_reads.sent == 200 and evictor.idle_reads.hits == 200

        # The dry run's OBJECT IDLETIME did not refresh anything: the same half is still idle.
        done = RedisEvictor(instance(redis.url), rate=0).run(
            EvictRequest(pattern=b"idle:*", idle_over_s=3), dry_run=False
        )
        assert (done.matched, done.evicted, done.complete) == (100, 100, True)
    assert client.exists(*UNREAD) == 0
    assert client.exists(*READ_AGAIN) == 100


def test_cli_idle_over_10s_dry_run_evict_audit_and_read_only(redis: LocalServer, tmp_path: Path) -> None:
    client = redis_py.Redis(port=redis.port)
    write_backdated(client, KEYS + OTHERS, idle_s=60)  # written a minute ago
    assert client.mget(READ_AGAIN)[0] is not None  # half read again now
    assert max(idle_times(client, READ_AGAIN)) <= 1 and min(idle_times(client, UNREAD)) >= 60

    with kept_in_use(lambda: client.mget(READ_AGAIN)):
        # 1. The dry run counts exactly the unread half of idle:*; other:* is idle but not matched.
        args = ("evict", redis.url, "--idle-over", "10s", "--pattern", "idle:*", "--rate", "0")
        dry = cachetop(*args, "--dry-run", "--json", state=tmp_path)
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)["matched"] == 100

        # 2. --read-only refuses, removes nothing and says so in the audit log.
        ro = cachetop(*args, "--yes", "--read-only", state=tmp_path)
        assert ro.returncode == 3
        assert "refused: cachetop runs with --read-only" in ro.stderr
        assert client.dbsize() == len(KEYS) + len(OTHERS)

        # 3. Without --yes and without a terminal: refused after the count.
        no = cachetop(*args, state=tmp_path)
        assert no.returncode == 3 and "refusing to evict 100 keys without --yes" in no.stderr

        # 4. The real evict removes exactly those keys.
        done = cachetop(*args, "--yes", "--json", state=tmp_path)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert (out["matched"], out["evicted"], out["complete"]) == (100, 100, True)
        assert client.exists(*UNREAD) == 0
        assert client.exists(*READ_AGAIN) == 100 and client.exists(*OTHERS) == 30

    entries = audit_lines(tmp_path)
    assert [(e["outcome"], e.get("matched"), e.get("evicted")) for e in entries] == [
        ("dry-run", 100, 0),
        ("refused", None, None),
        ("refused", None, None),
        ("intent", None, None),
        ("done", 100, 100),
    ]
    assert entries[-1]["what"] == {"pattern": "idle:*", "idle_over_s": 10}
    # The outcome names the first keys it removed (escaped), all of them from the unread half.
    assert len(entries[-1]["examples"]) == 5 and {k.encode() for k in entries[-1]["examples"]} <= set(UNREAD)
    assert entries[-1]["dry_run"] is False


def test_idle_over_alone_takes_every_key(redis: LocalServer, tmp_path: Path) -> None:
    client = redis_py.Redis(port=redis.port)
    write_backdated(client, KEYS + OTHERS, idle_s=3600)
    client.mget(READ_AGAIN)
    dry = cachetop("evict", redis.url, "--idle-over", "1h", "--dry-run", "--json", state=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["matched"] == 100 + 30
    assert audit_lines(tmp_path)[-1]["what"] == {"pattern": "*", "idle_over_s": 3600}


def test_lfu_policy_is_refused_with_a_reason(make_redis: Callable[..., LocalServer], tmp_path: Path) -> None:
    server = make_redis("--maxmemory-policy", "allkeys-lfu")
    client = redis_py.Redis(port=server.port)
    client.mset({key: b"x" for key in KEYS})
    for extra in (("--dry-run",), ("--yes",)):
        out = cachetop("evict", server.url, "--idle-over", "10s", *extra, state=tmp_path)
        assert out.returncode == 1
        assert "uses maxmemory-policy allkeys-lfu: under LFU policies" in out.stdout
        assert "nothing was removed" in out.stdout
    assert client.dbsize() == len(KEYS)


def test_usage_errors(redis: LocalServer, tmp_path: Path) -> None:
    cases = {
        ("evict", redis.url): "say what to evict",
        ("evict", redis.url, "--idle-over", "500ms"): "is under 1s",
        ("evict", redis.url, "--idle-over", "soon"): "--idle-over: 'soon' is not a duration",
        ("evict", redis.url, "--idle-over", "1m", "--key", "a"): "not with keys",
    }
    for args, message in cases.items():
        out = cachetop(*args, state=tmp_path)
        assert out.returncode == 2, args
        assert message in out.stderr, (args, out.stderr)


def test_idle_over_on_a_cluster_checks_every_master(tmp_path: Path) -> None:
    from redis.crc import key_slot

    from tests.cluster_fixture import running_cluster

    with running_cluster(tmp_path / "cluster") as cluster:
        ranges = cluster.slot_ranges()
        clients = {port: redis_py.Redis(port=port) for port in ranges}

        def owner(key: bytes) -> redis_py.Redis:
            slot = key_slot(key)
            return clients[next(p for p, (lo, hi) in ranges.items() if lo <= slot <= hi)]

        owner(b"template").set(b"template", b"v" * 100)
        payload = owner(b"template").dump(b"template")
        owner(b"template").delete(b"template")
        for key in KEYS:  # as if written a minute ago, on the master that owns each key
            owner(key).restore(key, 0, payload, idletime=60)
        for key in READ_AGAIN:
            owner(key).get(key)
        with kept_in_use(lambda: [owner(k).get(k) for k in READ_AGAIN]):
            args = (
                "evict",
                cluster.url,
                "--idle-over",
                "10s",
                "--pattern",
                "idle:*",
                "--rate",
                "0",
                "--json",
            )
            dry = cachetop(*args, "--dry-run", state=tmp_path)
            assert dry.returncode == 0, dry.stderr
            assert json.loads(dry.stdout)["matched"] == 100
            done = cachetop(*args, "--yes", state=tmp_path)
            assert done.returncode == 0, done.stderr
            report = json.loads(done.stdout)
            assert (report["matched"], report["evicted"], report["complete"]) == (100, 100, True)
            assert len(report["nodes"]) == len(ranges) and {n["state"] for n in report["nodes"].values()} == {
                "done"
            }
            assert sum(owner(k).exists(k) for k in UNREAD) == 0
            assert sum(owner(k).exists(k) for k in READ_AGAIN) == 100
        for client in clients.values():
            client.close()


def _evict_on_a_terminal(url: str, answer: bytes, state: Path) -> tuple[int, bytes]:
    """`evict --idle-over 10s` with stdin and stderr on a pty; answers the question; returns the exit
    status and what the terminal showed."""
    main, tty = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachetop", "evict", url, "--idle-over", "10s", "--rate", "0"],
        stdin=tty,
        stdout=subprocess.PIPE,
        stderr=tty,
        env={**os.environ, "XDG_STATE_HOME": str(state), "COLUMNS": "100"},
    )
    os.close(tty)
    os.set_blocking(main, False)
    seen = bytearray()

    def read() -> bool:
        with contextlib.suppress(BlockingIOError, OSError):
            seen.extend(os.read(main, 4096))
        return b"to confirm: " in seen

    try:
        wait_for(read, 15.0, "the question")
        os.write(main, answer + b"\n")
        proc.wait(timeout=20)
        read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        os.close(main)
    return proc.returncode, bytes(seen)


def test_above_1000_idle_keys_the_instance_name_must_be_typed(redis: LocalServer, tmp_path: Path) -> None:
    client = redis_py.Redis(port=redis.port)
    many = [b"old:%d" % i for i in range(1500)]
    write_backdated(client, many, idle_s=60)
    client.set(b"fresh", b"v")
    name = f"127.0.0.1:{redis.port}"

    with kept_in_use(lambda: client.get(b"fresh")):  # the application keeps reading it
        status, screen = _evict_on_a_terminal(redis.url, b"yes", tmp_path)
        assert status == 3
        assert f"Evict 1,500 keys from {name}?".encode() in screen
        assert f"Type the instance name ({name}) to confirm: ".encode() in screen
        assert client.dbsize() == 1501  # "yes" is not the name: nothing removed

        status, _ = _evict_on_a_terminal(redis.url, name.encode(), tmp_path)
        assert status == 0
        assert client.dbsize() == 1 and client.exists(b"fresh") == 1
    outcomes = [(e["outcome"], e.get("matched"), e.get("evicted")) for e in audit_lines(tmp_path)]
    assert outcomes == [("declined", 1500, None), ("intent", 1500, None), ("done", 1500, 1500)]

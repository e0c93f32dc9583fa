"""The daemon's /api/v1 (issue 18) against real servers: tokens, TLS, secrets, actions, streams.

The daemon is the real console script (tests/api_daemon.py); streams and catch-up are checked
with an in-process exporter fed known snapshots, over real sockets."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis as redis_py
import trustme

from cachetop.exporters import api as api_module
from cachetop.exporters.api import ApiServer
from cachetop.exporters.prometheus import PrometheusExporter
from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.servers import LocalServer
from cachetop.sources.attach import AttachSource
from cachetop.sources.link import RemoteActionError
from tests.api_daemon import start_api_daemon
from tests.conftest import until

PATHS = ("snapshot", "stream", "hotkeys", "alerts", "recording")


def test_every_api_path_refuses_a_missing_or_wrong_token_and_leaks_no_secret(
    tmp_path: Path, make_redis: object
) -> None:
    password = "s3cret-redis-pw-4711"
    server: LocalServer = make_redis("--requirepass", password)  # type: ignore[operator]
    url = f"redis://:{password}@127.0.0.1:{server.port}"
    rule = (
        '[[rule]]\nname = "low-hit"\nmetric = "hit_ratio"\nop = "<"\nthreshold = 90\nseverity = "critical"\n'
    )
    daemon = start_api_daemon(tmp_path, {"cache-a": url}, extra_toml=rule)
    try:
        for path in PATHS:
            status, doc = daemon.request(f"/api/v1/{path}", token=None)
            assert status == 401 and set(doc) == {"error"} and "no token" in doc["error"], (path, doc)
            status, doc = daemon.request(f"/api/v1/{path}", token="not-the-token-0123456789")
            assert status == 401 and doc == {"error": "wrong token: the daemon refused it (401)"}, path
        body = {"instance": "cache-a", "keys": [], "dry_run": True}
        status, doc = daemon.request("/api/v1/actions/evict", token="x" * 32, method="POST", body=body)
        assert status == 401 and set(doc) == {"error"}
        snap = daemon.wait_snapshot(what=lambda d: d["instances"][0]["status"] == "up")
        assert [i["name"] for i in snap["instances"]] == ["cache-a"]
        assert snap["seq"] >= 1 and snap["interval"] == 0.5 and snap["daemon"]["actions"] is True
        # The daemon's rules travel, so an attached dashboard colours values as the daemon alerts.
        (low_hit,) = snap["daemon"]["rules"]
        assert (low_hit["name"], low_hit["op"], low_hit["threshold"], low_hit["severity"]) == (
            "low-hit",
            "<",
            90,
            "critical",
        )
        assert "channels" not in low_hit and "where" not in low_hit
        status, raw = daemon.request("/api/v1/snapshot")
        text = json.dumps(raw)
        assert status == 200 and password not in text and daemon.token not in text
        assert daemon.action_token and daemon.action_token not in text
    finally:
        daemon.stop()
    log = daemon.stderr.read_text()
    assert "refused a request" in log and daemon.token not in log and password not in log


def test_tls_serves_api_and_metrics_to_a_client_that_trusts_the_ca(
    tmp_path: Path, redis: LocalServer
) -> None:
    ca = trustme.CA()
    daemon = start_api_daemon(tmp_path, {"r": redis.url}, tls=ca)
    try:
        assert daemon.url.startswith("https://")
        snap = daemon.wait_snapshot()
        assert snap["instances"][0]["name"] == "r"
        context = ssl.create_default_context(cafile=str(daemon.ca_file))
        metrics = urllib.request.urlopen(f"{daemon.url}/metrics", context=context, timeout=5).read()
        assert b"cachetop_up{" in metrics
        with pytest.raises(urllib.error.URLError):  # no certificate check passes without the CA
            urllib.request.urlopen(f"{daemon.url}/metrics", timeout=5)
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is not served
            urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/metrics", timeout=5).read()

        async def attach() -> tuple[str, str | None]:
            good = AttachSource(daemon.url, daemon.token, ca_file=str(daemon.ca_file))
            bad = AttachSource(daemon.url, daemon.token)
            await good.start()
            await bad.start()
            try:
                snap = await good.wait_snapshot(timeout=10)
                await until(
                    lambda: bad.link_problem and "certificate" in bad.link_problem, 10, "a TLS refusal"
                )
                return snap.instances[0].name, bad.link_problem
            finally:
                await good.stop()
                await bad.stop()

        name, problem = asyncio.run(attach())
        assert name == "r" and problem is not None and "--ca-file" in problem
    finally:
        daemon.stop()


def test_evict_through_the_api_removes_exactly_the_dry_runs_keys_and_is_audited(
    tmp_path: Path, redis: LocalServer
) -> None:
    client = redis_py.Redis(port=redis.port)
    for key in ("cart:1", "cart:2", "cart:3", "keep:1"):
        client.set(key, "v")
    daemon = start_api_daemon(tmp_path, {"r": redis.url})
    assert daemon.action_token
    act = {"X-Cachetop-Action-Token": daemon.action_token}
    keys = [base64.b64encode(k).decode() for k in (b"cart:1", b"cart:2", b"cart:3", b"cart:gone")]
    evict = "/api/v1/actions/evict"
    try:
        body = {"instance": "r", "keys": keys, "dry_run": True}
        status, doc = daemon.request(evict, method="POST", body=body)
        assert status == 403 and "no action token" in doc["error"]
        status, doc = daemon.request(
            evict, method="POST", body=body, headers={"X-Cachetop-Action-Token": "x" * 32}
        )
        assert status == 403 and doc == {"error": "refused: wrong action token"}
        assert client.dbsize() == 4
        status, plan = daemon.request(evict, method="POST", body=body, headers=act)
        assert status == 200 and plan["matched"] == 3 and "would evict" in plan["summary"]
        assert client.dbsize() == 4  # a dry run removes nothing
        status, done = daemon.request(
            evict, method="POST", body={"plan": plan["plan"], "confirm": True}, headers=act
        )
        assert status == 200 and (done["matched"], done["evicted"], done["complete"]) == (3, 3, True)
        assert sorted(client.keys()) == [b"keep:1"]
        status, _ = daemon.request(
            evict, method="POST", body={"plan": plan["plan"], "confirm": True}, headers=act
        )
        assert status == 409  # a plan runs once
    finally:
        daemon.stop()
    audit = [
        json.loads(line) for line in (tmp_path / "daemon-state" / "audit.jsonl").read_text().splitlines()
    ]
    outcomes = [(e["source"], e["outcome"], e.get("evicted")) for e in audit]
    assert outcomes == [("api", "intent", None), ("api", "done", 3)]
    assert audit[1]["instance"] == "r" and audit[1]["viewer"].startswith("127.0.0.1:")


def test_a_read_only_daemon_refuses_an_attached_evict_and_audits_the_refusal(
    tmp_path: Path, redis: LocalServer
) -> None:
    client = redis_py.Redis(port=redis.port)
    client.set("cart:1", "v")
    daemon = start_api_daemon(tmp_path, {"r": redis.url}, extra_args=["--read-only"])
    try:
        body = {"instance": "r", "keys": [base64.b64encode(b"cart:1").decode()], "dry_run": True}
        headers = {"X-Cachetop-Action-Token": str(daemon.action_token)}
        status, doc = daemon.request("/api/v1/actions/evict", method="POST", body=body, headers=headers)
        assert status == 403 and "--read-only" in doc["error"]

        async def attached() -> tuple[bool, str, str]:
            source = AttachSource(daemon.url, daemon.token, action_token=daemon.action_token)
            await source.start()
            try:
                await source.wait_snapshot(timeout=10)
                try:
                    await source.evict_dry_run("r", {"keys": body["keys"]})
                    refused = ""
                except RemoteActionError as exc:
                    refused = str(exc)
                return source.can_act, source.read_only_reason, refused
            finally:
                await source.stop()

        can_act, reason, refused = asyncio.run(attached())
        assert not can_act and reason == "read-only: the daemon runs with --read-only"
        assert refused.startswith("refused: cachetop runs with --read-only")
    finally:
        daemon.stop()
    assert client.exists("cart:1") == 1
    audit = [
        json.loads(line) for line in (tmp_path / "daemon-state" / "audit.jsonl").read_text().splitlines()
    ]
    assert [(e["source"], e["outcome"]) for e in audit] == [("api", "refused")] * 2  # HTTP, then attached


# --- streams, in process: known snapshots over real sockets --------------------------------------


def _snap(t: float, hit: float) -> Snapshot:
    inst = InstanceMetrics("c1", "redis", "127.0.0.1:1", Status.UP, None, {"hit_ratio": hit})
    return Snapshot(time=t, window_s=2.0, instances=(inst,))


def _serve(api: ApiServer, port: int = 0) -> PrometheusExporter:
    exporter = PrometheusExporter(api=api)
    exporter.serve(port, "127.0.0.1")
    return exporter


TOKEN = "t" * 24


def test_a_slow_viewer_loses_old_frames_and_a_fast_one_gets_every_frame() -> None:
    api = ApiServer(TOKEN, interval=lambda: 1.0)
    exporter = _serve(api)
    assert exporter.port is not None
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    slow.connect(("127.0.0.1", exporter.port))
    slow.sendall(f"GET /api/v1/stream HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    got: list[float] = []

    async def fast_viewer() -> None:
        source = AttachSource(f"http://127.0.0.1:{exporter.port}", TOKEN)
        source.subscribe(lambda s: got.append(s.instances[0].metrics["hit_ratio"]))
        await source.start()
        await asyncio.wait_for(source.connected.wait(), 10)
        await until(lambda: len(api.viewers) == 2, 10, "both viewers")
        padding = "x" * 100_000  # frames large enough to fill the slow viewer's socket buffers
        for n in range(200):
            inst = InstanceMetrics("c1", "redis", "127.0.0.1:1", Status.UP, padding, {"hit_ratio": float(n)})
            api.on_snapshot(Snapshot(time=1000.0 + n, window_s=2.0, instances=(inst,)))
            # The fast viewer keeps up (on a busy machine it too would lose frames otherwise).
            await until(lambda n=n: len(got) == n + 1, 10, "the fast viewer's frame")
        await until(lambda: len(got) == 200, 20, "every frame at the fast viewer")
        await source.stop()

    try:
        asyncio.run(fast_viewer())
        assert got == [float(n) for n in range(200)]
        # The fast viewer's handler may still be there (it learns of the close on its next write).
        slow_viewer = max(api.viewers, key=lambda v: v.dropped)
        assert slow_viewer.dropped > 0 and len(slow_viewer.frames) <= api_module.QUEUE_FRAMES
    finally:
        slow.close()
        exporter.close()


def test_attached_viewer_catches_up_after_a_lost_link_and_marks_the_gap_after_a_restart() -> None:
    api = ApiServer(TOKEN, interval=lambda: 1.0)
    exporter = _serve(api)
    port = exporter.port
    assert port is not None
    seen: list[tuple[float, str]] = []

    async def scenario() -> AttachSource:
        nonlocal exporter, api
        source = AttachSource(f"http://127.0.0.1:{port}", TOKEN)
        source.subscribe(lambda s: seen.append((s.time, str(s.instances[0].status))))
        await source.start()
        await asyncio.wait_for(source.connected.wait(), 10)
        for n in range(3):
            api.on_snapshot(_snap(1000.0 + n, 75.0))
        await until(lambda: len(seen) == 3, 10, "three snapshots")
        exporter.close()  # the link goes; the daemon (its ring) lives on
        await until(lambda: source.link_problem is not None, 10, "the lost link noticed")
        assert source.last_data == 1002.0
        for n in range(3, 6):  # published while nobody is attached
            api.on_snapshot(_snap(1000.0 + n, 75.0))
        exporter = _serve(api, port)
        await until(lambda: len(seen) == 6, 10, "the missed snapshots")
        assert source.link_problem is None and source.gaps == 0
        exporter.close()  # now the daemon restarts: a new ApiServer, nothing kept
        await until(lambda: source.link_problem is not None, 10, "the lost link noticed")
        api = ApiServer(TOKEN, interval=lambda: 1.0)
        exporter = _serve(api, port)
        await until(lambda: api.viewers, 10, "the viewer back")
        api.on_snapshot(_snap(1030.0, 75.0))
        await until(lambda: len(seen) == 8, 10, "the gap and the new snapshot")
        await source.stop()
        return source

    try:
        source = asyncio.run(scenario())
    finally:
        exporter.close()
    assert seen[:6] == [(1000.0 + n, "up") for n in range(6)]
    assert seen[6] == (1006.0, "unknown") and seen[7] == (1030.0, "up")
    assert source.gaps == 1


def test_the_api_is_off_without_a_token() -> None:
    exporter = PrometheusExporter()
    exporter.serve(0, "127.0.0.1")
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/api/v1/snapshot", timeout=5)
        assert err.value.code == 404 and b"api_token" in err.value.read()
        started = time.monotonic()
        body = urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5).read()
        assert b"cachetop_snapshots_total 0.0" in body and time.monotonic() - started < 5
    finally:
        exporter.close()


def test_the_daemons_recording_is_served_for_replay(tmp_path: Path, redis: LocalServer) -> None:
    from cachetop.exporters.recorder import Recording

    daemon = start_api_daemon(
        tmp_path, {"r": redis.url}, extra_args=["--record", str(tmp_path / "day.ctrec")]
    )
    try:
        daemon.wait_snapshot(what=lambda d: d["seq"] >= 3)
        status, data = daemon.request("/api/v1/recording")
        status_without, _ = daemon.request("/api/v1/recording", token=None)
    finally:
        daemon.stop()
    assert status == 200 and data.startswith(b"SQLite format 3") and status_without == 401
    copy = tmp_path / "copy.ctrec"
    copy.write_bytes(data)
    recording = Recording.open(copy)
    try:
        assert len(recording) >= 2 and [i.name for i in recording[0].instances] == ["r"]
    finally:
        recording.close()


def test_a_quiet_stream_sends_keep_alives_and_streams_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_module, "KEEPALIVE_S", 0.05)
    monkeypatch.setattr(api_module, "MAX_STREAMS", 1)
    api = ApiServer(TOKEN, interval=lambda: 1.0)
    exporter = _serve(api)
    request = f"GET /api/v1/stream HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", exporter.port)) as first:
            first.sendall(request)
            first.settimeout(5)
            received = b""
            while received.count(b": keep-alive\n\n") < 2:
                received += first.recv(4096)
            assert received.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream")
            assert b"event: snapshot" not in received  # nothing published: only keep-alives
            with socket.create_connection(("127.0.0.1", exporter.port)) as second:
                second.sendall(request)
                second.settimeout(5)
                answer = b""
                while chunk := second.recv(4096):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 503") and b"too many viewers (at most 1)" in answer
    finally:
        exporter.close()


def test_a_stalled_daemon_shows_before_its_socket_gives_up() -> None:
    api = ApiServer(TOKEN, interval=lambda: 0.2)
    exporter = _serve(api)

    async def scenario() -> tuple[str | None, str | None]:
        source = AttachSource(f"http://127.0.0.1:{exporter.port}", TOKEN)
        await source.start()
        try:
            await asyncio.wait_for(source.connected.wait(), 10)
            api.on_snapshot(_snap(1000.0, 75.0))
            await source.wait_snapshot(timeout=10)
            started = time.monotonic()
            await until(lambda: source.link_problem, 10, "the stall said")  # the socket stays open
            stalled_after = time.monotonic() - started
            said = source.link_problem
            assert 0.8 <= stalled_after <= 3.0, stalled_after
            api.on_snapshot(_snap(1000.2, 75.0))
            await source.wait_snapshot(timeout=10)
            return said, source.link_problem
        finally:
            await source.stop()

    try:
        said, after = asyncio.run(scenario())
    finally:
        exporter.close()
    assert said is not None and said.startswith("no snapshot for 1s: the daemon or the link stalls")
    assert after is None


def test_a_daemon_nobody_watches_builds_no_document_until_asked() -> None:
    api = ApiServer(TOKEN, interval=lambda: 0.2)
    exporter = _serve(api)
    try:
        for n in range(5):
            api.on_snapshot(_snap(1000.0 + n, 75.0))
        assert (api.idle_skips, api.latest) == (5, None)

        def ask() -> tuple[int, bytes]:
            req = urllib.request.Request(
                f"http://127.0.0.1:{exporter.port}/api/v1/snapshot",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()

        async def scenario() -> tuple[int, bytes]:
            asking = asyncio.create_task(asyncio.to_thread(ask))
            await until(lambda: api.wanted_until > 0, 10, "the request")
            api.on_snapshot(_snap(1005.0, 75.0))  # the next poll: built, since someone asked
            return await asking

        status, body = asyncio.run(scenario())
        assert status == 200 and json.loads(body)["seq"] == 6 and json.loads(body)["time"] == 1005.0
        assert api.idle_skips == 5
    finally:
        exporter.close()

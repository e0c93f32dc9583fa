"""The daemon's /api/v1 streams (issue 18), in process: an exporter fed known snapshots, real
sockets, and AttachSource reading them (catch-up, gaps, stalls, slow viewers, keep-alives)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request

import pytest

from cachetop.exporters import api as api_module
from cachetop.exporters.api import ApiServer
from cachetop.exporters.prometheus import PrometheusExporter
from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.sources.attach import AttachSource
from tests.conftest import until


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

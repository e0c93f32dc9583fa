"""cachetop's own traffic stays out of the numbers, also when things go wrong."""

from __future__ import annotations

import asyncio
import socket

from cachetop.engine.monitor import Monitor
from cachetop.model import Status
from cachetop.servers import LocalServer
from tests.monitoring import fast_config


def raw_command(port: int, *parts: str) -> bytes:
    request = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p.encode()) for p in parts)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request)
        return s.recv(4096)


async def test_a_poll_that_times_out_does_not_count_as_traffic(make_redis) -> None:  # type: ignore[no-untyped-def]
    redis = make_redis("--enable-debug-command", "yes")
    config = fast_config(redis.url, interval=0.2, window=30, timeout=0.3)
    async with Monitor(config) as mon:
        poller = mon.pollers[0]
        await mon.wait_polls(3)
        # One application command that blocks the server longer than our timeout.
        reply = await asyncio.to_thread(raw_command, redis.port, "DEBUG", "SLEEP", "0.7")
        assert reply == b"+OK\r\n"
        await mon.wait_snapshot(lambda s: s.instances[0].status == Status.UP and poller.polls > 6, 10)
        await mon.wait_polls(poller.polls + 3)
        window = poller.window
        assert len(window.failed_polls) >= 1  # the sleep did time a poll out
        assert window.resets == 0
        assert window.net_delta("commands", "own_commands") == 1  # DEBUG SLEEP, and nothing of ours


async def test_acl_denied_latency_histogram_is_no_false_reset(make_redis) -> None:  # type: ignore[no-untyped-def]
    server = make_redis()
    raw_command(server.port, "ACL", "SETUSER", "watcher", "on", ">watcher-pass", "+@all", "-latency", "~*")
    url = f"redis://watcher:watcher-pass@127.0.0.1:{server.port}"
    async with Monitor(fast_config(url, interval=0.1, window=30)) as mon:
        await mon.wait_polls(8)
        poller = mon.pollers[0]
        inst = mon.snapshot().instances[0]
    assert inst.status == Status.UP
    assert poller.window.resets == 0
    assert inst.metrics["ops_per_sec"] == 0.0
    assert inst.metrics["error_rate"] == 0.0  # our one rejected LATENCY is not the server's error
    assert inst.metrics.get("server_latency_p50_ms") is None


async def test_something_else_on_the_port_is_down_with_a_reason(memcached: LocalServer) -> None:
    async with Monitor(fast_config(f"redis://127.0.0.1:{memcached.port}", timeout=1.0)) as mon:
        snap = await mon.wait_snapshot(lambda s: s.instances[0].status == Status.DOWN, 5)
    assert snap.instances[0].error is not None
    assert snap.instances[0].error.startswith(("not a Redis/Valkey server?", "timed out", "connection"))

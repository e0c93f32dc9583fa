"""Someone else's MONITOR (a redis-cli left open, a tool that stopped reading) whose output buffer
grows: shown on the instance with its address, age and omem, and as foreign_monitor_omem_bytes.
cachetop's own sampler is a MONITOR too, and is not foreign."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

import redis as redis_py

from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.model import METRICS, Snapshot
from cachetop.servers import LocalServer
from tests.monitoring import fast_config


def foreign_omem(port: int, addr: str) -> int:
    client = redis_py.Redis(port=port, driver_info=None)
    try:
        return sum(int(c["omem"]) for c in client.client_list() if c["addr"] == addr)
    finally:
        client.close()


def load_until_grown(load: redis_py.Redis, port: int, addr: str) -> int:
    value = "v" * 1000
    grown = 0
    for _ in range(200):
        pipe = load.pipeline(transaction=False)
        for i in range(200):
            pipe.set(f"k{i}", value)
        pipe.execute()
        grown = foreign_omem(port, addr)
        if grown > 1 << 20:
            break
    return grown


async def test_a_foreign_monitor_that_does_not_read_is_shown_with_its_omem(redis: LocalServer) -> None:
    assert "foreign_monitor_omem_bytes" in METRICS
    config = fast_config(redis.url, interval=0.2, window=2.0)
    # cachetop's own MONITOR runs the whole time: it must not count as foreign.
    hotkeys = replace(HotKeySettings(), monitor_on=600, monitor_off=1)
    config = replace(config, sections={**config.sections, "hotkeys": hotkeys})
    # The foreign MONITOR: a small receive buffer, MONITOR sent, nothing ever read.
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", redis.port))
    stuck.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
    host, port = stuck.getsockname()[:2]
    addr = f"{host}:{port}"
    load = redis_py.Redis(port=redis.port, driver_info=None)
    try:
        async with Monitor(config) as mon, LiveSources(config, mon, alerts=False) as live:
            collector = live.collectors[mon.pollers[0].inst.name]
            # Load (in a thread: cachetop's own MONITOR is read meanwhile) until the server
            # holds over 1 MiB for the reader that never reads.
            grown = await asyncio.to_thread(load_until_grown, load, redis.port, addr)
            assert grown > 1 << 20

            def seen(s: Snapshot) -> bool:
                inst = s.instances[0]
                omem = inst.metrics.get("foreign_monitor_omem_bytes")
                return omem is not None and omem > 1 << 20 and collector.sampler is not None

            snap = await mon.wait_snapshot(seen, 15)
            assert collector.sampler.phase == "sampling"  # our own MONITOR was on meanwhile
    finally:
        stuck.close()
        load.close()
    inst = snap.instances[0]
    line = inst.facts["foreign_monitors"]
    assert line.startswith(f"{addr} age ") and " omem " in line
    assert ";" not in line  # one foreign MONITOR: cachetop's own is not listed
    assert inst.metrics["foreign_monitor_omem_bytes"] == int(line.rsplit(" omem ", 1)[1].split()[0])
    assert "foreign_monitor_omem_bytes" in snap.to_json()["instances"][0]["metrics"]

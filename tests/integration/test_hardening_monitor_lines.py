"""Memory stays bounded against any server (issue 12), for the MONITOR and memcached `watch` raw
readers: a purpose-built hostile peer answers the handshake like a real server, then streams one
line that never ends (32 MB without a newline). The reader must hold at most its line cap, still
count what comes after the line, and say in its stats that it cut one."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.hotkeys import memcached_watch, redis_monitor
from cachetop.hotkeys.memcached_watch import WatchSampler
from cachetop.hotkeys.monitor_parser import ParseResult
from cachetop.hotkeys.redis_monitor import MonitorSampler
from cachetop.hotkeys.watch_parser import WatchResult
from tests.conftest import until

ENDLESS = 32 << 20  # bytes of one line without a newline
PIECE = b"x" * (1 << 20)
# How much more memory the process may hold at its peak while the line streams: the line cap, a
# chunk or two, asyncio's stream buffer (up to 2 MiB) and the peer's send buffer (it runs in this
# process too); about 4 MB here, far below the line (the old readers held all of it, twice).
PEAK_CAP = 8 << 20

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def peer(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


async def read_command(reader: asyncio.StreamReader) -> list[bytes]:
    """One RESP command (an array of bulk strings), as redis-py and cachetop send them."""
    header = await reader.readline()
    if not header:
        raise ConnectionError
    args = []
    for _ in range(int(header[1:])):
        size = int((await reader.readline())[1:])
        args.append((await reader.readexactly(size + 2))[:-2])
    return args


async def endless(writer: asyncio.StreamWriter, head: bytes, tail: bytes, go: asyncio.Event) -> None:
    await go.wait()
    writer.write(head)
    for _ in range(ENDLESS // len(PIECE)):
        writer.write(PIECE)
        await writer.drain()
    writer.write(tail)
    await writer.drain()


async def hostile_redis(
    go: asyncio.Event, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answers like Redis until MONITOR; then one endless line, then one ordinary line."""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
        while True:
            args = await read_command(reader)
            name = b" ".join(a.lower() for a in args[:2])
            if name.startswith(b"command"):
                writer.write(b"*0\r\n")
            elif name == b"client id":
                writer.write(b":7\r\n")
            elif name == b"client list":
                listing = b"id=7 addr=127.0.0.1:1 name=cachetop-hotkeys-monitor omem=0 cmd=monitor\n"
                writer.write(b"$%d\r\n%s\r\n" % (len(listing), listing))
            elif name == b"monitor":
                writer.write(b"+OK\r\n")
                await endless(
                    writer,
                    b'+1.0 [0 10.0.0.1:1] "SET" "big" "',
                    b'"\r\n+1.0 [0 10.0.0.1:1] "GET" "after"\r\n',
                    go,
                )
            else:
                writer.write(b"+OK\r\n")
            await writer.drain()


async def hostile_memcached(
    go: asyncio.Event, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    with contextlib.suppress(ConnectionError):
        while line := await reader.readline():
            if line.startswith(b"watch"):
                writer.write(b"OK\r\n")
                await endless(
                    writer,
                    b"ts=1.0 gid=1 type=item_get key=",
                    b" status=found clsid=1 cfd=5 size=1\n"
                    b"ts=1.0 gid=2 type=item_get key=after status=found clsid=1 cfd=6 size=1\n",
                    go,
                )
            elif line.startswith(b"stats"):
                writer.write(b"STAT log_worker_dropped 0\r\nEND\r\n")
            await writer.drain()


@pytest.fixture
def traced() -> object:
    tracemalloc.start()
    yield
    tracemalloc.stop()


async def test_monitor_reader_cuts_an_endless_line(traced: object) -> None:
    counts: dict[bytes, int] = {}

    def sink(out: ParseResult, _covered: float, _now: float) -> None:
        for key, c in out.counts.items():
            counts[key] = counts.get(key, 0) + c[0]

    go = asyncio.Event()
    async with peer(functools.partial(hostile_redis, go)) as port:
        inst = InstanceConfig(name="hostile", target=parse_target(f"redis://127.0.0.1:{port}"))
        sampler = MonitorSampler(inst, sink, on_s=600, off_s=1)
        task = asyncio.create_task(sampler.run())
        try:
            await until(lambda: sampler.phase == "sampling", what="the stream to start")
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            go.set()
            await until(lambda: b"after" in counts, 30, "the line after the endless one")
            grew = tracemalloc.get_traced_memory()[1] - before
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert grew < PEAK_CAP, f"grew by {grew} bytes"
    assert counts == {b"big": 1, b"after": 1}  # the cut line's head still names its key
    assert sampler.stats.long_lines == 1
    assert redis_monitor.MAX_LINE == 256 << 10


async def test_watch_reader_cuts_an_endless_line(traced: object) -> None:
    counts: dict[bytes, int] = {}

    def sink(out: WatchResult, _covered: float, _now: float) -> None:
        for key, c in out.counts.items():
            counts[key] = counts.get(key, 0) + c[0]

    go = asyncio.Event()
    async with peer(functools.partial(hostile_memcached, go)) as port:
        inst = InstanceConfig(name="hostile", target=parse_target(f"memcached://127.0.0.1:{port}"))
        sampler = WatchSampler(inst, sink)
        task = asyncio.create_task(sampler.run())
        try:
            await until(lambda: sampler.phase == "sampling", what="the stream to start")
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            go.set()
            await until(lambda: b"after" in counts, 30, "the line after the endless one")
            grew = tracemalloc.get_traced_memory()[1] - before
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert grew < PEAK_CAP, f"grew by {grew} bytes"
    assert counts == {b"after": 1}  # a cut watch line has no status or cfd: not a lookup
    assert sampler.stats.long_lines == 1
    assert memcached_watch.MAX_LINE == 4096

"""A poll skipped because the Monitor was paused (queued for a slot, then paused) is no poll:
`polls` and `polled` say what the server was asked, which `wait_polls` and the first snapshot
rely on."""

from __future__ import annotations

import asyncio

from cachetop.engine.monitor import Monitor
from cachetop.servers import LocalServer
from tests.conftest import until
from tests.monitoring import fast_config


async def test_a_poll_skipped_while_paused_is_not_counted(redis: LocalServer) -> None:
    loop = asyncio.get_running_loop()
    async with Monitor(fast_config(redis.url, interval=0.2)) as mon:
        await mon.wait_polls(2)
        poller = mon.pollers[0]
        mon.pause()
        await until(lambda: poller._poll_since is None, 5, "no poll in flight")
        polls = poller.polls
        poller.polled.clear()
        # The queued-while-paused path: poll_once reaches its slot after the pause.
        await poller.poll_once()
        paused_at = loop.time()
        await until(lambda: loop.time() > paused_at + 3 * 0.2, 5, "three intervals paused")
        assert poller.polls == polls
        assert not poller.polled.is_set()
        mon.resume()
        await until(lambda: poller.polls > polls, 5, "a poll after resume")

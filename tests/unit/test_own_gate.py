"""OwnTrafficGate: a poll's INFO never runs while a side command of ours is in flight."""

from __future__ import annotations

import asyncio

from cachetop.util.aio import OwnTrafficGate


async def test_exclusive_waits_for_shared_holders_and_blocks_new_ones() -> None:
    gate = OwnTrafficGate()
    log: list[str] = []
    release_side = asyncio.Event()
    release_poll = asyncio.Event()

    async def side(name: str, until: asyncio.Event | None) -> None:
        async with gate.shared():
            log.append(f"{name} in")
            if until is not None:
                await until.wait()
            log.append(f"{name} out")

    async def poll() -> None:
        async with gate.exclusive():
            log.append("poll in")
            await release_poll.wait()
            log.append("poll out")

    first = asyncio.create_task(side("a", release_side))
    await asyncio.sleep(0)  # one loop step (no time passes): a takes the gate
    polling = asyncio.create_task(poll())
    await asyncio.sleep(0)
    late = asyncio.create_task(side("b", None))
    for _ in range(5):
        await asyncio.sleep(0)
    assert log == ["a in"]  # the poll waits for a; b waits for the poll
    release_side.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert log == ["a in", "a out", "poll in"]
    release_poll.set()
    await asyncio.gather(first, polling, late)
    assert log == ["a in", "a out", "poll in", "poll out", "b in", "b out"]


async def holding(gate: OwnTrafficGate, release: asyncio.Event) -> asyncio.Task[None]:
    """A side command in flight until `release` is set; returns once it holds the gate."""

    async def side() -> None:
        async with gate.shared():
            await release.wait()

    task = asyncio.create_task(side())
    await asyncio.sleep(0)  # one loop step (no time passes): the side command takes the gate
    return task


async def test_a_cancelled_holder_releases_the_gate() -> None:
    gate = OwnTrafficGate()
    task = await holding(gate, asyncio.Event())
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with asyncio.timeout(1):
        async with gate.exclusive():
            pass


async def test_a_stuck_side_command_delays_the_poll_at_most_max_wait() -> None:
    gate = OwnTrafficGate()
    stuck = asyncio.Event()
    task = await holding(gate, stuck)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with gate.exclusive(max_wait=0.05):
        waited = loop.time() - started
    assert 0.05 <= waited < 1.0
    stuck.set()
    await task

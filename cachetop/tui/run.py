"""Running the dashboard: the Monitor and the other live sources started around the app in one
asyncio loop, and stopped (within deadlines) however the app ends: q, SIGHUP, SIGTERM or an error.

run_dashboard is the entry point from `cachetop [TARGET...]`; run_app also serves the demo, and
run_on_source any other Source (engine/source.py): a replay, a daemon attached over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Any, NoReturn

from cachetop.engine.config import Config
from cachetop.engine.source import Source
from cachetop.tui.app import CachetopApp

QUIT_DEADLINE_S = 1.0  # after a signal, how long the app may take to end before it is cancelled
# After SIGHUP or SIGTERM, the process ends by this time even if the event loop is wedged.
HARD_EXIT_S = 5.0
FAST_EXIT_ABOVE = 200  # instances: above, the process ends without freeing memory (end_process)


async def run_app(
    app: CachetopApp,
    config: Config,
    *,
    start_monitor: bool = True,
    live_sources: bool = True,
    record: str | None = None,
    fast_exit: bool = False,
) -> int:
    """Runs the app in this loop with a Monitor around it, and stops the Monitor (closing every
    connection) however the app ends: q, SIGHUP (terminal closed), SIGTERM or an error.

    The app draws first and the Monitor starts beside it (10,000 instances take seconds to
    start), so the screen, `q` and the signals work from the first frame; quitting during the
    start abandons it."""
    loop = asyncio.get_running_loop()
    stop_asked = asyncio.Event()

    def on_signal() -> None:
        stop_asked.set()
        app.exit(0)
        _hard_exit_after(HARD_EXIT_S)

    for sig in (signal.SIGHUP, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    try:
        if not start_monitor:
            await app.run_async()
            return app.return_code or 0
        async with contextlib.AsyncExitStack() as sources:
            app_task = asyncio.create_task(app.run_async(), name="dashboard")
            starting = asyncio.create_task(
                _start_sources(app, config, sources, live_sources, record, fast_exit)
            )
            stop_wait = asyncio.create_task(stop_asked.wait())
            try:
                await asyncio.wait({app_task, starting, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if starting.done() and starting.exception() is None and not stop_wait.done():
                    await asyncio.wait({app_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await _end(app, app_task, starting, stop_wait)
            if starting.done() and not starting.cancelled() and starting.exception() is not None:
                raise starting.exception()  # type: ignore[misc]  # a bad --record, a failed start
            await app_task  # the app's own error, if it had one
    finally:
        for sig in (signal.SIGHUP, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return app.return_code or 0


async def run_on_source(app: CachetopApp, config: Config, source: Source) -> int:
    """Runs the app on a Source other than the live Monitor (a replay, an attached daemon): the
    source starts before the app shows it and stops however the app ends."""
    await source.start()
    try:
        app.monitor = source  # the app subscribes to it as it mounts
        return await run_app(app, config, start_monitor=False)
    finally:
        await source.stop()


def _hard_exit_after(seconds: float) -> None:
    """A terminal that went away can wedge Textual's output: seen under load after SIGHUP, with
    App._shutdown blocked in the writer queue's put while the writer thread waits for work, and
    nothing on the event loop ever runs again. A daemon thread ends the process anyway. The
    alert outbox and the audit log are written as they go, the kernel closes the sockets, and
    the MONITOR guardian ends a MONITOR when its pipe closes: a clean exit would keep no more."""
    timer = threading.Timer(seconds, os._exit, args=(1,))
    timer.daemon = True
    timer.start()


async def _start_sources(
    app: CachetopApp,
    config: Config,
    sources: contextlib.AsyncExitStack,
    live_sources: bool,
    record: str | None,
    fast_exit: bool,
) -> None:
    """The Monitor, hot keys and alerts, and the outputs, entered into `sources` (closed by run_app
    when the app ends), then handed to the app."""
    from cachetop.engine.live import LiveSources
    from cachetop.engine.monitor import Monitor
    from cachetop.exporters.outputs import attach_outputs

    monitor = Monitor(config)
    # Attached first: a large fleet takes seconds to start, and the Monitor publishes what it
    # has every interval meanwhile, so rows show as instances are added.
    app.attach_monitor(monitor)
    await monitor.start()
    # A large fleet whose process ends right after (run_dashboard) is not stopped poller by
    # poller: 10,000 take a second to cancel and close, and the kernel closes their sockets at
    # exit. Everything that keeps state (alerts, the recording) is still closed properly.
    sources.push_async_callback(monitor.pause_only if fast_exit else monitor.stop)
    live = await sources.enter_async_context(
        LiveSources(config, monitor, hotkeys=live_sources, alerts=live_sources, on_notice=app.say)
    )
    await sources.enter_async_context(attach_outputs(monitor, live.alert_service, record=record))
    app.alerts = live.alert_service
    app.live = live  # type: ignore[attr-defined]  # the Keyspace tab pauses a hot-key sampler through it


async def _end(
    app: CachetopApp, app_task: asyncio.Task[Any], starting: asyncio.Task[None], stop_wait: asyncio.Task[Any]
) -> None:
    """Ends the app (if a signal or a failed start ended the run) and a start still under way,
    each within a bound: quitting must not wait for a large fleet to finish starting."""
    stop_wait.cancel()
    if not starting.done():
        starting.cancel()
    if not app_task.done():
        app.exit(app.return_code or 0)
        _, pending = await asyncio.wait({app_task}, timeout=QUIT_DEADLINE_S)
        if pending:  # a signal that came before the app ran: its exit() was lost
            app_task.cancel()
    # Bounded too: a task that swallows its cancel must not hold the quit (run_dashboard's
    # close_runner deals with what is still pending).
    await asyncio.wait({starting, app_task, stop_wait}, timeout=QUIT_DEADLINE_S)


def run_dashboard(config: Config, args: argparse.Namespace) -> int:
    """Entry point from `cachetop [TARGET...]` (cachetop/commands/dashboard.py)."""
    app = CachetopApp(
        config, theme=getattr(args, "theme", None), read_only=bool(getattr(args, "read_only", False))
    )
    fast = len(config.instances) > FAST_EXIT_ABOVE
    runner = asyncio.Runner()
    try:
        code = runner.run(run_app(app, config, record=getattr(args, "record", None), fast_exit=fast))
    except BaseException:
        close_runner(runner)  # the error is shown by the caller; a stuck task must not hide it
        raise
    if fast or not close_runner(runner):
        end_process(code)
    return code


def close_runner(runner: asyncio.Runner) -> bool:
    """Runner.close(), bounded: it cancels what is left once and waits for ever, and a task
    that swallows its cancel (see aio.cancel_and_wait) would keep a closed dashboard alive.
    False when a task would not end (the loop is left open: the process is about to end)."""
    from cachetop.engine.monitor import cancel_within

    loop = runner.get_loop()
    left = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if left and loop.run_until_complete(cancel_within(left, QUIT_DEADLINE_S)):
        return False
    runner.close()
    return True


def end_process(code: int) -> NoReturn:
    """Ends the process now. run_app has closed what matters (connections, within a deadline;
    the recording; the alert state); what is left of a large fleet is memory, and freeing it
    object by object (plus cancelling the closes that missed the deadline) took 5 s of the
    10,000-instance quit. The kernel closes any socket still open."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)

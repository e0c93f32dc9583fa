"""End MONITOR and `watch` streams before the process is suspended (SIGTSTP, SIGTTIN, SIGTTOU).

A suspended reader makes Redis buffer MONITOR output without limit (see guardian.py), so when a
stop signal that can be caught arrives (Ctrl-Z, `kill -TSTP`, a background job touching the
terminal), every stream registered here is shut down first, in the signal handler itself, with
shutdown(2) on its socket: that sends the FIN at once, needs no event loop turn, and the server
frees the client as soon as it reads it. Then the process stops as it would have: the handler
that was there before runs (Textual's driver restores the terminal and stops the process), or the
default action is taken by raising the signal again. When the process continues (SIGCONT),
nothing needs doing here: each sampler finds its stream ended by the suspension, and starts its
next phase on its own schedule.

SIGSTOP cannot be caught; the guardian process covers that case.

The handlers are installed by `protect()`, which samplers call when a stream starts (signal
handlers can only be set from the main thread; elsewhere it does nothing), and by `install()`,
which the dashboard calls once Textual's driver has put its SIGTSTP handler in place. Each keeps
the handler it replaces and chains to it, and re-installs ours if something replaced it since.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

STOP_SIGNALS = (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)

Handler = Callable[[int, FrameType | None], object] | int | None


class Suspendable(Protocol):
    def end_for_suspend(self, signum: int) -> None:
        """Ends the stream at once (no await: this runs in a signal handler)."""


_streams: weakref.WeakSet[Suspendable] = weakref.WeakSet()
_previous: dict[int, Handler] = {}


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    previous = _previous.get(signum, signal.SIG_DFL)
    if previous == signal.SIG_IGN:
        return  # the process will not stop: nothing to end
    for stream in list(_streams):
        with contextlib.suppress(Exception):
            stream.end_for_suspend(signum)
    if callable(previous):
        previous(signum, frame)
        return
    # The default action (stop): take it, then be the handler again once continued.
    signal.signal(signum, signal.SIG_DFL)
    try:
        os.kill(os.getpid(), signum)
    finally:
        signal.signal(signum, _on_stop_signal)


def protect(stream: Suspendable) -> None:
    """Ends `stream` before this process is suspended by a stop signal, until `release`."""
    _streams.add(stream)
    install()


def install() -> None:
    """Puts the handler in place (again), chaining to the one there now. The dashboard calls it
    once Textual's driver has set its own SIGTSTP handler, so the first sample is covered too."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        current = signal.getsignal(signum)
        if current is _on_stop_signal:
            continue
        _previous[signum] = signal.SIG_DFL if current is None else current
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, _on_stop_signal)


def release(stream: Suspendable) -> None:
    _streams.discard(stream)


def shut_down_now(writer: Any) -> bool:
    """Ends a stream's connection from a signal handler: shutdown(2) sends the FIN at once, and
    the event loop closes the transport after SIGCONT. False when there was no socket to end."""
    sock = writer.get_extra_info("socket") if writer is not None else None
    if sock is None:
        return False
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    return True

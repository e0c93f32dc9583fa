"""The dashboard's screen when stderr is redirected (`cachetop ... 2>err.log`).

Textual draws on file descriptor 2 (its Linux driver writes to sys.__stderr__). With stderr sent to
a file, the screen went into the file, as escape codes, and the terminal stayed blank. For the
dashboard's run, fd 2 is pointed at the controlling terminal instead, and the log (logging's
handlers, which held the old stderr) keeps writing to where stderr was sent: the file gets the log
lines and nothing else. Afterwards fd 2 goes back to the file.

No Textual here: this is plain file-descriptor work, used by commands/dashboard.py and demo.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import TextIO

TTY = "/dev/tty"


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


@contextlib.contextmanager
def screen_on_terminal(tty_path: str = TTY) -> Iterator[bool]:
    """Within the block, fd 2 is the terminal and the log goes where stderr was sent.
    Yields whether it moved anything: not when stderr already is a terminal, nor when there is
    no terminal to draw on, neither /dev/tty nor stdout (then the dashboard behaves as it did)."""
    if _is_terminal(sys.__stderr__):
        yield False
        return
    try:
        tty_fd = os.open(tty_path, os.O_RDWR | os.O_NOCTTY)
    except OSError:  # no controlling terminal; stdout may still be one (a pty handed to us)
        if not _is_terminal(sys.__stdout__):
            yield False
            return
        tty_fd = os.dup(sys.__stdout__.fileno())  # type: ignore[union-attr]
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    log_fd = os.dup(2)
    log_stream = os.fdopen(log_fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    moved: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stderr, sys.__stderr__):
            moved.append((handler, handler.stream))
            handler.setStream(log_stream)
    os.dup2(tty_fd, 2)
    os.close(tty_fd)
    try:
        yield True
    finally:
        with contextlib.suppress(Exception):
            sys.__stderr__.flush()  # type: ignore[union-attr]  # the last of the screen, on the terminal
        os.dup2(log_fd, 2)
        for handler, stream in moved:
            handler.setStream(stream)
        log_stream.close()

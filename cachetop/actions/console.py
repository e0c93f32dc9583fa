"""What the evict and warm commands share: picking the instance, confirming, Ctrl-C, SIGTERM and
SIGHUP as a cancel that lets the current batch finish (so counts stay exact), and a progress bar
on a terminal."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, TextIO

from cachetop.engine.config import Config, InstanceConfig
from cachetop.engine.configfile import ConfigError
from cachetop.util.safe_text import display_key

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # a second signal stopped the action at once, mid-batch
TYPE_NAME_ABOVE = 1000  # more matches than this: the operator types the instance name


def add_action_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instance", metavar="NAME", help="the instance to act on, by its config name")
    parser.add_argument("--dry-run", action="store_true", help="count and show examples; change nothing")
    parser.add_argument("--rate", type=float, metavar="N", help="at most N keys per second (0: no limit)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument(
        "--read-only", action="store_true", help="refuse to change anything (as the dashboard)"
    )


def pick_instances(config: Config, name: str | None) -> list[InstanceConfig]:
    """The instance named, or the only one; several memcached targets form one pool."""
    instances = list(config.instances)
    if name is not None:
        chosen = [i for i in instances if i.name == name]
        if not chosen:
            known = ", ".join(display_key(i.name, 40) for i in instances)
            raise ConfigError(f"--instance: no instance named {display_key(name, 60)!r} (known: {known})")
        return chosen
    if len(instances) == 1 or all(i.target.kind == "memcached" for i in instances):
        return instances
    known = ", ".join(display_key(i.name, 40) for i in instances)
    raise ConfigError(
        f"{len(instances)} instances to choose from: name one with --instance NAME (one of: {known}); "
        "only memcached targets are acted on together, as one pool"
    )


def is_terminal(stream: TextIO) -> bool:
    with contextlib.suppress(Exception):
        return stream.isatty()
    return False


def confirm(question: str, instance: str, matched: int, *, stdin: TextIO, out: TextIO) -> bool:
    """y/N, or the instance name typed in full when more than TYPE_NAME_ABOVE keys would go."""
    try:
        if matched > TYPE_NAME_ABOVE:
            out.write(f"{question}\nType the instance name ({instance}) to confirm: ")
            out.flush()
            return stdin.readline().strip() == instance
        out.write(f"{question} [y/N] ")
        out.flush()
        return stdin.readline().strip().lower() in ("y", "yes")
    except (EOFError, KeyboardInterrupt):
        out.write("\n")
        return False


CANCEL_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")  # each ends an action the same clean way


@dataclass(slots=True)
class Interruption:
    """Which signal cancelled the action (None: none did), for the report and the audit log.
    While `at_prompt` is set, a signal also interrupts the question (a closed terminal or a
    `kill` must not leave cachetop waiting for an answer that will never come)."""

    signal: str | None = None
    at_prompt: bool = False


@contextlib.contextmanager
def cancel_on_interrupt(cancel: threading.Event, err: TextIO) -> Iterator[Interruption]:
    """Ctrl-C, SIGTERM (a service manager, `kill`) and SIGHUP (the terminal closed) all cancel the
    same way: the first finishes the batch in flight, then the action stops and reports exactly
    what was done (and the audit log gets its outcome). A second one stops at once
    (KeyboardInterrupt; the batch in flight is then reported as uncertain)."""
    state = Interruption()

    def handler(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if cancel.is_set():
            raise KeyboardInterrupt
        state.signal = name
        cancel.set()
        if state.at_prompt:
            raise KeyboardInterrupt  # confirm() takes it as "no"
        again = "Ctrl-C" if name == "SIGINT" else name
        # The terminal may be gone (SIGHUP): a failed notice must not stop the clean cancel.
        # os.write, not err.write: the handler may run while the main code is inside a write to
        # the same buffered stream, and that reentrant call would fail and lose the notice.
        notice = f"\n{name}: cancelling after the current batch ({again} again to stop at once)\n"
        try:
            os.write(err.fileno(), notice.encode())
        except (OSError, ValueError):  # no file behind it (a test's buffer) or the terminal is gone
            with contextlib.suppress(Exception):
                err.write(notice)

    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    signals = [getattr(signal, n) for n in CANCEL_SIGNALS if hasattr(signal, n)]
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield state
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def progress_bar(
    enabled: bool, description: str, total: int | None
) -> Iterator[Callable[[int, int | None], None]]:
    """A rich bar with rate and ETA on stderr when `enabled`; yields update(done, total)."""
    if not enabled:
        yield lambda _done, _total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from cachetop.util.format import rate as fmt_rate

    class RateColumn(TextColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{fmt_rate(speed)} keys/s" if speed else "… keys/s")

    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(""),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, new_total: int | None) -> None:
            bar.update(task, completed=done, total=new_total if new_total is not None else total)

        yield update


def stderr_line(text: str) -> None:
    print(text, file=sys.stderr)

"""What several commands share: turning targets, --config and duration flags into a Config; Ctrl-C in
two stages; the exit code; a progress bar on stderr."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from cachetop.engine.config import Config, apply_profile, resolve_config, window_problem
from cachetop.engine.configfile import ConfigError, bounded_duration

T = TypeVar("T")


def flag_duration(value: str | None, flag: str) -> float | None:
    """A duration from a command-line flag, within the bounds the config key of the same name has
    (--interval as interval = ...); a mistake is a ConfigError naming the flag and the bounds."""
    if value is None:
        return None
    try:
        return bounded_duration(value, flag)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def config_from_args(args: argparse.Namespace) -> Config:
    """Targets and --config as the CLI rule says, with --interval/--window/--timeout on top."""
    config = resolve_config(getattr(args, "targets", None) or [], getattr(args, "config", None))
    settings = config.settings
    interval = flag_duration(getattr(args, "interval", None), "--interval")
    window = flag_duration(getattr(args, "window", None), "--window")
    timeout = flag_duration(getattr(args, "timeout", None), "--timeout")
    if interval is not None:
        settings = replace(settings, interval=interval)
    if window is not None:
        settings = replace(settings, window=window)
    if timeout is not None:
        settings = replace(settings, timeout=timeout)
    problem = window_problem(settings)
    if problem:  # the file's rule and message; the flag that broke it (or the file's window) named
        raise ConfigError(f"{'--window' if window is not None else '--interval'}: {problem}")
    config = replace(config, settings=settings)
    return apply_profile(config, "light") if getattr(args, "light", False) else config


class Interrupts:
    """Ctrl-C (or SIGTERM) while a command works, in two stages: the first sets `stop` so the work ends
    early with what it has (and says so with `message`), the second cancels the task started with `run`
    at once. Use as `with Interrupts(...) as interrupts:` inside the running event loop."""

    def __init__(self, message: str | None = None) -> None:
        self.stop = asyncio.Event()
        self.interrupted = False
        self._message = message
        self._current: asyncio.Task[Any] | None = None

    def _on_signal(self) -> None:
        if self.interrupted:  # the second one: stop at once (the work's own cleanup still runs)
            if self._current is not None:
                self._current.cancel()
            return
        self.interrupted = True
        self.stop.set()
        if self._message:
            print(f"\n{self._message}", file=sys.stderr)

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Await `work` as the task a second signal cancels."""
        self._current = asyncio.create_task(work)
        return await self._current

    def __enter__(self) -> Interrupts:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def exit_code(interrupted: bool, failed: bool) -> int:
    """130 after Ctrl-C (as a shell reports it), 1 when an instance failed, else 0."""
    return 130 if interrupted else 1 if failed else 0


@contextlib.contextmanager
def instance_progress(
    enabled: bool, name: str, first: str, *, total: float | None, counted: bool
) -> Iterator[Callable[..., None] | None]:
    """A transient rich progress bar on stderr for one instance's work, or None when it is not a
    terminal. It yields show(phase, **fields): the line reads "<name>: <phase>" (the name escaped and
    cut to 40 cells) and fields (completed, total) move the bar. `counted` adds N of M."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cachetop.util.safe_text import display_key

    label = display_key(name, 40)
    columns = [TextColumn("{task.description}", markup=False), BarColumn()]
    if counted:
        columns.append(MofNCompleteColumn())
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{label}: {first}", total=total)

        def show(phase: str, **fields: Any) -> None:
            bar.update(task, description=f"{label}: {phase}", **fields)

        yield show


def print_reports(
    reports: list[dict[str, Any]], as_json: bool, print_one: Callable[[dict[str, Any], Any], None]
) -> bool:
    """Per-instance reports to stdout: {"instances": [...]} with --json, else each one's table by
    `print_one(report, out)` with a blank line after it. True when any report carries an error."""
    if as_json:
        json.dump({"instances": reports}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from cachetop.commands.render_table import Output

        out = Output(sys.stdout)
        for report in reports:
            print_one(report, out)
            out.line()
        out.flush()
    return any(r.get("error") for r in reports)

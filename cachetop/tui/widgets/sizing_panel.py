"""The Sizing tab: hit ratio against memory for this instance, from a MONITOR profile.

Nothing runs by itself: `m` starts one profile (MONITOR for [sizing] duration, default 30 s: its
cost is on screen before and while it runs); leaving the tab, the view or the app cancels it, and
the MONITOR connection closes (the hot-key machinery's guardian covers a kill). While it runs the
instance's hot-key sampler is paused, so this process holds at most 3 connections to the instance
(poll, probe, MONITOR): the profile's INFO and CONFIG GET go on the poll connection when the
poller lends it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from cachetop.backends.capabilities import LendsSideCommands
from cachetop.tui.instances import live_instance
from cachetop.tui.sizing_chart import chart_lines, note_lines, summary_lines
from cachetop.tui.widgets.keyspace_panel import hot_key_sampler, own_traffic, still_sampled
from cachetop.util.redact import scrub
from cachetop.util.safe_text import display_key

DURATION_S = 30.0
RATE = 0.05
IDLE_HINT = (
    "m: profile this instance's memory needs ({s:g} s of MONITOR on Redis: a saturated server serves "
    "55-63% fewer commands meanwhile; `watch` on memcached; leaving the tab cancels it)"
)


class SizingPanel(Vertical):
    DEFAULT_CSS = """
    SizingPanel { height: 1fr; }
    SizingPanel #sizing-status { height: auto; padding: 0 1; color: $text-muted; }
    SizingPanel #sizing-chart { height: auto; padding: 0 1; }
    SizingPanel #sizing-summary { height: auto; padding: 0 1; }
    SizingPanel #sizing-notes { height: auto; padding: 0 1; color: $text-muted; }
    """
    # Test hook: analyse_redis keyword arguments (a shorter duration).
    OPTIONS: ClassVar[dict[str, Any]] = {}

    def __init__(self, instance: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instance = instance
        self.report: dict[str, Any] | None = None
        self.running = False
        self._stream = "MONITOR"  # what the profile reads: MONITOR, or watch on memcached
        self._profile_task: asyncio.Task[None] | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._hint(), id="sizing-status", markup=False)
        with VerticalScroll():
            yield Static("", id="sizing-summary", markup=False)  # the calibration line first
            yield Static("", id="sizing-chart", markup=False)
            yield Static("", id="sizing-notes", markup=False)

    def _hint(self) -> str:
        return IDLE_HINT.format(s=self.OPTIONS.get("duration", DURATION_S))

    def on_unmount(self) -> None:
        self.cancel()

    def on_resize(self) -> None:
        self._render_report()

    def _status(self, text: str) -> None:
        if self.is_mounted:
            self.query_one("#sizing-status", Static).update(text)

    def cancel(self) -> None:
        task, self._profile_task = self._profile_task, None
        if task is not None and not task.done():
            task.cancel()

    def action_run(self) -> None:
        if self.running:
            self.app.notify("a sizing profile is already running", severity="warning", markup=False)
            return
        inst = live_instance(self.app, self.instance)
        if inst is None or inst.target.kind not in ("redis", "valkey", "memcached"):
            self.app.notify(
                "sizing profiles a single Redis, Valkey or memcached server", severity="error", markup=False
            )
            return
        self.running = True
        self._stream = "watch" if inst.target.kind == "memcached" else "MONITOR"
        self._status(f"profiling {display_key(self.instance, 40)}: starting {self._stream}…")
        self._profile_task = asyncio.create_task(self._profile(inst), name=f"sizing {self.instance}")

    async def _profile(self, inst: Any) -> None:
        from cachetop.analysis.sizing.analyse import analyse_memcached, analyse_redis

        app: Any = self.app
        sampler = hot_key_sampler(app, self.instance)
        paused = False
        error = None
        try:
            if sampler is not None:
                await sampler.pause()
                paused = True
            options = {"duration": DURATION_S, "rate": RATE, **self.OPTIONS}
            if inst.target.kind == "memcached":  # `watch` and `stats`: no counter we report moves
                report = await analyse_memcached(
                    inst, progress=self._progress, timeout=app.config.timeout_of(inst), **options
                )
            else:
                own, gate = own_traffic(app, self.instance)
                poller = next((p for p in app.live_pollers() if p.inst.name == self.instance), None)
                backend = poller.backend if poller is not None else None
                side = backend.side_commands if isinstance(backend, LendsSideCommands) else None
                report = await analyse_redis(
                    inst,
                    progress=self._progress,
                    side=side,
                    count=own.count,
                    gate=gate,
                    timeout=app.config.timeout_of(inst),
                    **options,
                )
            self.report = report.to_json()
        except asyncio.CancelledError:
            self._status(f"profile cancelled: {self._stream} closed\n" + self._hint())
            raise
        except Exception as exc:  # a refused MONITOR (ACL), a lost server: said here, no traceback
            error = scrub(display_key(str(exc) or type(exc).__name__, 300))
        finally:
            self.running = False
            if paused and sampler is not None and still_sampled(app, self.instance, sampler):
                with contextlib.suppress(Exception):
                    await sampler.start()
        if error:
            self._status(f"profile failed: {error}\n{self._hint()}")
        else:
            self._status("m: profile again")
            self._render_report()

    def _progress(self, p: Any) -> None:
        if self.running and not p.monitor_on and not p.lines:
            self._status(f"reading the hit ratio before {self._stream} goes on…")
        elif self.running and p.elapsed_s < p.duration_s:
            self._status(
                f"{self._stream} on: {p.elapsed_s:.0f}/{p.duration_s:.0f} s, {p.lines} lines, "
                f"{p.sampled_reads} sampled reads of {p.sampled_keys} keys, omem {p.max_omem} bytes"
            )
        elif self.running:
            self._status(f"{self._stream} off: simulating…")

    def _render_report(self) -> None:
        if self.report is None or not self.is_mounted:
            return
        width = self.size.width or self.app.size.width
        self.query_one("#sizing-chart", Static).update("\n".join(chart_lines(self.report, width - 2)))
        self.query_one("#sizing-summary", Static).update("\n".join(summary_lines(self.report)))
        self.query_one("#sizing-notes", Static).update("\n".join(note_lines(self.report)))

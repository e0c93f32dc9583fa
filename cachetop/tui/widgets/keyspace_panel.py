"""The Keyspace tab: where the memory goes, what expires together, what sits idle, what would compress.

Nothing runs by itself: `a` starts one analysis of this instance (the keyspace sampler, budgeted),
with its progress on screen; leaving the tab, the view or the app cancels it, and the analysis
closes its connection. The last report is kept in the state dir, so reopening shows it with its
age. `i` evicts idle keys through the same dry run, confirmation and audit as any evict.

Footprint: the analysis holds one connection of its own while it runs. When the instance's hot-key
sampler is running too (its MONITOR stream is the other extra connection), it is paused for the
analysis and resumed after, so this process never holds more than 3 connections to the instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import ProgressBar, Static

from cachetop.backends.capabilities import AcceptsOwnSources, HasOwnGate
from cachetop.tui.instances import live_instance
from cachetop.tui.keyspace_rows import (
    age_text,
    details_text,
    headline,
    prefix_columns,
    prefix_rows,
    progress_text,
)
from cachetop.tui.widgets.diff_table import DiffTable
from cachetop.util.redact import scrub
from cachetop.util.safe_text import display_key

IDLE_HINT = "a: analyse the keyspace (one budgeted pass; leaving the tab cancels it) · i: evict idle keys"
AGAIN_HINT = "a: analyse again · i: evict idle keys"


@runtime_checkable
class PausableSampler(Protocol):
    """A hot-key collector: pause() closes its connections, start() resumes it with its history."""

    async def start(self) -> None: ...

    async def pause(self) -> None: ...


_OWN: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()  # backend -> OwnCounts


def own_traffic(app: Any, instance: str) -> tuple[Any, Any]:
    """(OwnCounts, the poller's own-traffic gate) for an analysis in this process: what it sends is
    taken out of what the dashboard reports, as the hot-key sampler's is. One OwnCounts per backend,
    registered once: its counts are cumulative, and a fresh one would read as counters going down."""
    from cachetop.analysis.keyspace import OwnCounts

    poller = next((p for p in app.live_pollers() if p.inst.name == instance), None)
    backend = poller.backend if poller is not None else None
    if not isinstance(backend, AcceptsOwnSources):
        return OwnCounts(), None
    own = _OWN.get(backend)
    if own is None:
        own = _OWN[backend] = OwnCounts()
        backend.add_own_source(
            "keyspace", own.commands, hits=own.hits, misses=own.misses, connections=own.connections
        )
    return own, backend.own_gate if isinstance(backend, HasOwnGate) else None


def hot_key_sampler(app: Any, instance: str) -> PausableSampler | None:
    """The instance's running hot-key collector, from the live sources the dashboard runs."""
    live = getattr(app, "live", None)
    collectors = getattr(live, "collectors", None)
    sampler = collectors.get(instance) if isinstance(collectors, Mapping) else None
    return sampler if isinstance(sampler, PausableSampler) else None


def still_sampled(app: Any, instance: str, sampler: PausableSampler) -> bool:
    """Resume the paused sampler only while the app runs on and the live sources still hold it: a
    quit cancels the analysis too, and a sampler started then would outlive the live sources."""
    if getattr(app, "_exit", False):  # Textual's App.exit() was called: the app is closing
        return False
    return hot_key_sampler(app, instance) is sampler


class KeyspacePanel(Vertical):
    DEFAULT_CSS = """
    KeyspacePanel { height: 1fr; }
    KeyspacePanel #keyspace-status { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    KeyspacePanel #keyspace-progress { display: none; padding: 0 1; }
    KeyspacePanel.running #keyspace-progress { display: block; }
    KeyspacePanel #keyspace-table { height: auto; max-height: 12; }
    KeyspacePanel #keyspace-more { height: 1fr; }
    KeyspacePanel #keyspace-details { height: auto; padding: 0 1; }
    """
    # Test hook: analyse_instance's keyword arguments (a smaller sample or rate).
    ANALYSIS_OPTIONS: ClassVar[dict[str, Any]] = {}

    def __init__(self, instance: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instance = instance
        self.report: dict[str, Any] | None = None
        self.saved_at: float | None = None
        self.running = False
        self.error: str | None = None
        self.paused_hotkeys = False  # the hot-key sampler is paused for the running analysis
        self._analysis: asyncio.Task[None] | None = None

    def compose(self) -> ComposeResult:
        yield Static(IDLE_HINT, id="keyspace-status", markup=False)
        yield ProgressBar(total=None, show_eta=False, id="keyspace-progress")
        yield DiffTable(id="keyspace-table")
        with VerticalScroll(id="keyspace-more"):
            yield Static("", id="keyspace-details", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DiffTable)
        table.set_colours(self.app.get_css_variables())
        table.set_columns(prefix_columns(self.size.width or self.app.size.width))
        table.cursor_type = "row"
        self.load_saved()
        self.set_interval(5.0, self._refresh_age)

    def on_unmount(self) -> None:
        self.cancel()

    def on_resize(self, event: events.Resize) -> None:
        table = self.query_one(DiffTable)
        columns = prefix_columns(event.size.width)
        if list(columns) != table.layout_columns:
            table.set_columns(columns)
            self._render_report()

    # --- the saved report ---------------------------------------------------------------------

    def _state_dir(self) -> Any:
        app: Any = self.app
        return app.config.settings.state_dir

    def load_saved(self) -> None:
        from cachetop.analysis.keyspace import load_report

        loaded = load_report(self._state_dir(), self.instance)
        if loaded is not None:
            self.report, self.saved_at = loaded
            self._render_report()

    def _refresh_age(self) -> None:
        if not self.running and self.report is not None and self.error is None:
            self._status(self._headline())

    def _headline(self) -> str:
        assert self.report is not None
        line = headline(self.report, self.saved_at)
        if self.report.get("complete") is False:
            line += " · stopped before the end"
        interval = "± = 95% interval · " if self.report.get("source") != "metadump" else ""
        return f"{line}\n{interval}{AGAIN_HINT}"

    def _render_report(self) -> None:
        if self.report is None:
            return
        self.query_one(DiffTable).show(prefix_rows(self.report))
        details = details_text(self.report)
        if self.report.get("error"):
            details = f"error: {display_key(str(self.report['error']), 200)}\n{details}"
        self.query_one("#keyspace-details", Static).update(details)
        if not self.running and self.error is None:
            self._status(self._headline())

    def _status(self, text: str) -> None:
        self.query_one("#keyspace-status", Static).update(text)

    # --- running ------------------------------------------------------------------------------

    def action_run(self) -> None:
        if self.running:
            self.app.notify("a keyspace analysis is already running", severity="warning", markup=False)
            return
        app: Any = self.app
        inst = live_instance(app, self.instance)
        if inst is None or not any(p.inst.name == self.instance for p in app.live_pollers()):
            # A replay (or another source without live servers): the recording has no keyspace.
            app.notify(
                f"no live server behind {display_key(self.instance, 40)} here: "
                "run `cachetop keyspace URL` against it",
                severity="warning",
                markup=False,
            )
            return
        self.running = True
        self.error = None
        self.add_class("running")
        self._status(f"analysing {display_key(self.instance, 40)}: connecting…")
        self._analysis = asyncio.create_task(self._analyse(inst), name=f"keyspace {self.instance}")

    def cancel(self) -> None:
        """Stops a running analysis (leaving the tab, the view or the app): its connection closes."""
        task, self._analysis = self._analysis, None
        if task is not None and not task.done():
            task.cancel()

    async def _analyse(self, inst: Any) -> None:
        from cachetop.analysis.keyspace import analyse_instance, save_report
        from cachetop.analysis.keyspace.config import keyspace_settings

        app: Any = self.app
        sampler = hot_key_sampler(app, self.instance)
        try:
            if sampler is not None:
                await sampler.pause()  # its connection closes: we stay within 3 to the instance
                self.paused_hotkeys = True
            own, gate = own_traffic(app, self.instance)
            settings = keyspace_settings(app.config)  # [keyspace] sample, rate, values
            options = {
                "timeout": app.config.timeout_of(inst),
                "sample": settings.sample,
                "rate": settings.rate,
                "values_per_prefix": settings.values,
                **self.ANALYSIS_OPTIONS,
            }
            report = await analyse_instance(inst, progress=self._progress, own=own, gate=gate, **options)
            data = report.to_json()
            if data.get("error") and not data.get("keys_scanned"):
                # Nothing was walked (the server refused or went away): the last good report stays.
                raise RuntimeError(str(data["error"]))
            now = time.time()
            try:
                save_report(self._state_dir(), data, now=now)
            except OSError as exc:
                app.notify(f"the report was not kept: {exc.strerror or exc}", severity="warning")
            self.report, self.saved_at = data, now
            figures = getattr(getattr(app, "live", None), "keyspace", None)
            if figures is not None:  # expiry_cliff_keys follows the new report at once
                figures.offer(data, now)
        except asyncio.CancelledError:
            self._status("analysis cancelled" + (f"\n{IDLE_HINT}" if self.report is None else ""))
            raise
        except Exception as exc:  # a server error, a refused command: said here, never a traceback
            self.error = scrub(display_key(str(exc) or type(exc).__name__, 300))
        finally:
            self.running = False
            if self.is_mounted:
                self.remove_class("running")
            if sampler is not None and self.paused_hotkeys:
                self.paused_hotkeys = False
                if still_sampled(app, self.instance, sampler):
                    with contextlib.suppress(Exception):
                        await sampler.start()
        if self.is_mounted:
            self._render_report()
            if self.error:  # said above the report kept from before, which stays on screen
                kept = f" · below: the report of {age_text(self.saved_at)}" if self.report else ""
                self._status(
                    f"analysis failed: {self.error}{kept}\n{AGAIN_HINT if self.report else IDLE_HINT}"
                )

    def _progress(self, progress: Any) -> None:
        if not self.is_mounted or not self.running:
            return
        self._status(progress_text(progress))
        bar = self.query_one(ProgressBar)
        hint = getattr(progress, "keys_total_hint", None)
        to_sample = getattr(progress, "keys_to_sample", 0)
        if getattr(progress, "phase", "") == "sampling" and to_sample:
            bar.update(total=to_sample, progress=getattr(progress, "keys_sampled", 0))
        elif hint:
            bar.update(total=max(hint, 1), progress=min(getattr(progress, "keys_scanned", 0), hint))

    # --- evict idle keys ----------------------------------------------------------------------

    def selected_prefix(self) -> str | None:
        """The selected row's prefix, as the report names it."""
        table = self.query_one(DiffTable)
        key = table.selected_key()
        if self.report is None or key is None or not key.startswith("prefix:"):
            return None
        prefixes = self.report.get("prefixes") or []
        index = int(key.split(":", 1)[1])
        entry = prefixes[index] if 0 <= index < len(prefixes) else None
        return str(entry.get("prefix")) if isinstance(entry, Mapping) else None

    def action_evict_idle(self) -> None:
        from cachetop.tui.widgets.keyspace_evict import ask_idle_evict, usable

        prefixes = (self.report or {}).get("prefixes") or []
        names = frozenset(
            str(p.get("prefix")) for p in prefixes if isinstance(p, Mapping) and usable(p.get("prefix"))
        )
        ask_idle_evict(self.app, self.instance, self.selected_prefix(), names)

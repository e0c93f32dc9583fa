"""Evict from the dashboard: read-only guard, dry run, a confirmation modal, progress, audit.

    request_evict(app, "cache-1", EvictRequest(keys=(b"hot:1",)))   # from any binding
    evict_from_panel(hot_keys_panel)                                  # the Hot keys tab's "e"

The dry run and the eviction run in worker threads (the blocking actions code), so the screen
never stalls; they reach widgets only through call_from_thread. The modal shows the dry run's
count and examples (escaped, as Text), asks for the instance name to be typed above
TYPE_NAME_ABOVE keys, then shows a progress bar with rate and ETA and a Cancel that stops after
the batch in flight, so the final message says exactly what was removed. Every outcome
(refused, declined, done, cancelled, failed) goes to the audit log with source "tui", and an
intent line before the first key goes: when it cannot be written the evict does not start.
Leaving the app mid-evict (q, SIGTERM, SIGHUP) cancels like the Cancel button, so the outcome
line still says exactly what was removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, ProgressBar, Static

from cachetop.actions.audit import KEY_LOG_LEN, AuditError, AuditLog, ReadOnlyError, check_writable
from cachetop.actions.console import TYPE_NAME_ABOVE
from cachetop.actions.evict import EvictRequest, EvictResult, summary
from cachetop.actions.evict_run import run_evict
from cachetop.actions.own_report import NOT_REPORTED
from cachetop.actions.redis_nodes import ActionError
from cachetop.engine.config import InstanceConfig
from cachetop.sources.link import RemoteActions
from cachetop.tui.evict_own import evict_report
from cachetop.tui.instances import live_instance
from cachetop.util.safe_text import display_key


def _instance(app: Any, name: str) -> InstanceConfig | None:
    return live_instance(app, name)


def _audit(app: Any) -> AuditLog:
    return AuditLog(app.config.settings.state_dir, source="tui")


def _note(app: Any, inst: InstanceConfig, outcome: str, **fields: Any) -> bool:
    """An audit line that must not crash the dashboard: a failure becomes an error toast."""
    try:
        _audit(app).record("evict", inst, outcome=outcome, **fields)
    except AuditError as exc:
        app.notify(f"{exc}: this {outcome} outcome is not in it", title="audit", severity="error",
                   markup=False, timeout=15)  # fmt: skip
        return False
    return True


def _run(
    inst: InstanceConfig,
    request: EvictRequest,
    *,
    dry_run: bool,
    cancel: threading.Event,
    progress: Any,
    timeout: float,
    app: Any = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> EvictResult:
    own = evict_report(app, inst.name, loop) or NOT_REPORTED  # what it sends is our own traffic
    return run_evict(
        inst, request, dry_run=dry_run, timeout=timeout, cancel=cancel, progress=progress, own=own
    )


def request_evict(app: App[Any], instance: str, request: EvictRequest) -> None:
    """Starts an eviction the operator asked for: refuses in read-only, else dry run + modal."""
    cfg: Any = app
    if isinstance(cfg.monitor, RemoteActions):  # attached: the daemon dry-runs, checks, runs, audits
        from cachetop.tui.widgets.remote_evict import request_remote_evict

        request_remote_evict(app, cfg.monitor, instance, request)
        return
    inst = _instance(cfg, instance)
    if inst is None:
        app.notify(f"no instance named {display_key(instance, 40)}", severity="error", markup=False)
        return
    if inst.target.kind == "memcached" and not request.keys and request.idle_over_s is None:
        app.notify("memcached cannot evict by pattern: select a key", severity="error", markup=False)
        return
    try:
        check_writable(inst, read_only=bool(cfg.read_only), action="evict", config_path=cfg.config.path)
    except ReadOnlyError as exc:
        _note(cfg, inst, "refused", reason=str(exc), what=request.describe())
        app.notify(str(exc), title="read-only", severity="error", markup=False, timeout=8)
        return
    timeout = max(cfg.config.timeout_of(inst), 5.0)
    loop = asyncio.get_running_loop()

    def dry_run() -> None:
        try:
            preview = _run(
                inst, request, dry_run=True, cancel=threading.Event(), progress=None, timeout=timeout,
                app=cfg, loop=loop,
            )  # fmt: skip
        except ActionError as exc:
            app.call_from_thread(app.notify, str(exc), severity="error", markup=False)
            return
        app.call_from_thread(app.push_screen, ConfirmEvictScreen(inst, request, preview, timeout))

    app.run_worker(dry_run, thread=True, name="evict dry run", group="evict")


def hot_keys_of(app: Any, instance: str) -> list[bytes]:
    """The raw keys in the order the Hot keys panel shows them (by count, highest first)."""
    snap = getattr(app, "latest", None)
    inst = snap.by_name(instance) if snap is not None else None
    view = inst.extras.get("hotkeys") if inst is not None and inst.extras else None
    if view is None:
        return []
    return [k.key for k in sorted(view.keys, key=lambda k: k.count, reverse=True)]


def evict_from_panel(panel: Any) -> None:
    """The Hot keys tab's evict action: the key under the table cursor (the hottest without one)."""
    keys = hot_keys_of(panel.app, panel.instance)
    table = panel.query_one("#hotkeys-table")
    row = table.cursor_row if getattr(table, "cursor_type", "none") == "row" else 0
    if not keys or not 0 <= row < len(keys):
        panel.app.notify("no hot key selected", severity="warning", markup=False)
        return
    request_evict(panel.app, panel.instance, EvictRequest(keys=(keys[row],)))


class ConfirmEvictScreen(ModalScreen[EvictResult | None]):
    """Confirm, then watch the eviction; dismissed with the result (None: declined)."""

    DEFAULT_CSS = """
    ConfirmEvictScreen { align: center middle; }
    ConfirmEvictScreen > Vertical { width: 72; height: auto; border: thick $error; background: $surface;
                                    padding: 1 2; }
    ConfirmEvictScreen #evict-what { height: auto; }
    ConfirmEvictScreen #evict-type { margin-top: 1; }
    ConfirmEvictScreen #evict-progress, ConfirmEvictScreen #evict-rate { display: none; margin-top: 1; }
    ConfirmEvictScreen.running #evict-progress, ConfirmEvictScreen.running #evict-rate { display: block; }
    ConfirmEvictScreen.running #evict-type, ConfirmEvictScreen.running #evict-confirm { display: none; }
    ConfirmEvictScreen Horizontal { height: auto; margin-top: 1; }
    ConfirmEvictScreen Button { margin-right: 2; }
    ConfirmEvictScreen Button:focus { text-style: bold reverse; }
    ConfirmEvictScreen #evict-keys { height: auto; margin-top: 1; color: $text-muted; }
    ConfirmEvictScreen.running #evict-keys { display: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    # Focused as the screen is composed, before any key queued behind it is handled: Textual's
    # default (the first focusable widget) would give Evict the focus until on_mount's deferred
    # focus ran, and an Enter typed in that moment would evict.
    AUTO_FOCUS = "#evict-type, #evict-cancel"

    def __init__(
        self, inst: InstanceConfig, request: EvictRequest, preview: EvictResult, timeout: float
    ) -> None:
        super().__init__()
        self.inst = inst
        self.request = request
        self.preview = preview
        self.timeout = timeout
        self.cancel_event = threading.Event()
        self.running = False
        self.must_type = preview.matched > TYPE_NAME_ABOVE
        self._started = 0.0
        self.run_id = os.urandom(6).hex()  # pairs the intent line with its outcome line
        self._owner: Any = None  # the app, kept for the worker: the screen may be gone by its end
        self._loop: asyncio.AbstractEventLoop | None = None

    def compose(self) -> ComposeResult:
        name = display_key(self.inst.name, 40)
        with Vertical():
            yield Static(f"Evict from {name} ({self.request.label()})", id="evict-title", markup=False)
            yield Static(summary(self.preview, self.inst.name), id="evict-what", markup=False)
            if self.must_type:
                yield Input(placeholder=f"type {name} to confirm", id="evict-type")
            yield ProgressBar(total=max(self.preview.matched, 1), show_eta=True, id="evict-progress")
            yield Static("", id="evict-rate", markup=False)
            with Horizontal():
                yield Button("Evict", variant="error", id="evict-confirm", disabled=self._blocked(""))
                yield Button("Cancel", id="evict-cancel")
            yield Static(self.keys_hint(), id="evict-keys", markup=False)

    def keys_hint(self) -> str:
        """What Enter does here, said on screen: Cancel has the focus (the safe default), so
        Enter alone never evicts; evicting takes a deliberate Tab to Evict, or the typed name."""
        if self.must_type:
            return f"type {display_key(self.inst.name, 40)}, then Enter: evict · Esc: cancel"
        if self._blocked(""):
            return "Enter or Esc: close (nothing to evict)"
        return "Enter: cancel (focused) · Tab, Enter: evict · Esc: cancel"

    def on_mount(self) -> None:
        self.query_one("#evict-type" if self.must_type else "#evict-cancel").focus()

    def _blocked(self, typed: str) -> bool:
        return self.preview.matched == 0 or (self.must_type and typed != self.inst.name)

    @on(Input.Changed, "#evict-type")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#evict-confirm", Button).disabled = self._blocked(event.value)

    @on(Input.Submitted, "#evict-type")
    def _submitted(self, event: Input.Submitted) -> None:
        if not self._blocked(event.value):
            self._start()

    @on(Button.Pressed, "#evict-confirm")
    def _confirm(self) -> None:
        if not self.query_one("#evict-confirm", Button).disabled:
            self._start()

    @on(Button.Pressed, "#evict-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        if self.running:
            self.cancel_event.set()  # the worker stops after its batch and reports
            self.query_one("#evict-rate", Static).update("cancelling after the batch in flight…")
            return
        _note(self.app, self.inst, "declined", what=self.request.describe(), matched=self.preview.matched)
        self.dismiss(None)

    def on_unmount(self) -> None:
        # The app is closing (q, SIGTERM, SIGHUP) mid-evict: stop after the batch in flight, so
        # the worker still writes the exact outcome before the process ends.
        self.cancel_event.set()

    def _start(self) -> None:
        if self.running:
            return
        try:
            _audit(self.app).record(
                "evict", self.inst, outcome="intent", run=self.run_id, what=self.request.describe(),
                matched=self.preview.matched, dry_run=False,
            )  # fmt: skip
        except AuditError as exc:
            app = self.app
            self.dismiss(None)
            app.notify(f"refused: {exc}; nothing was evicted", title="evict", severity="error",
                       markup=False, timeout=15)  # fmt: skip
            return
        self._owner = self.app
        self._loop = asyncio.get_running_loop()
        self.running = True
        self.add_class("running")
        self._started = time.monotonic()
        self.run_worker(self._evict, thread=True, name="evict", group="evict")

    def _evict(self) -> None:
        def progress(result: EvictResult) -> None:
            self._tell(self._progress, result.matched, result.evicted)

        try:
            result = _run(
                self.inst, self.request, dry_run=False, cancel=self.cancel_event, progress=progress,
                timeout=self.timeout, app=self._owner, loop=self._loop,
            )  # fmt: skip
        except ActionError as exc:
            result = EvictResult(dry_run=False, error=str(exc))
        outcome = "cancelled" if result.cancelled else "failed" if result.error else "done"
        fields: dict[str, Any] = {
            "matched": result.matched,
            "evicted": result.evicted,
            "dry_run": False,
            "complete": result.complete,
            "run": self.run_id,
        }
        if result.node_reports:
            fields["nodes"] = {a: r.as_json() for a, r in result.node_reports.items()}
        if result.error:
            fields["error"] = result.error
        if result.examples:  # as the CLI's outcome line: the first keys matched, escaped
            fields["examples"] = [display_key(k, KEY_LOG_LEN) for k in result.examples]
        try:
            _audit(self._owner).record(
                "evict", self.inst, outcome=outcome, what=self.request.describe(), **fields
            )
        except AuditError as exc:
            text = f"{exc}: this {outcome} outcome is not in it"
            self._tell(self._owner.notify, text, title="audit", severity="error", markup=False, timeout=15)
        self._tell(self._finish, result)

    def _tell(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """From the worker to the screen, without waiting: call_from_thread would block for good
        once the app has stopped handling messages (quit mid-evict), and the outcome line would
        never be written. A screen that is gone is not updated; the evict goes on regardless."""

        def deliver() -> None:
            with contextlib.suppress(Exception):
                fn(*args, **kwargs)

        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: no one is left to tell
            self._loop.call_soon_threadsafe(deliver)

    def _progress(self, matched: int, evicted: int) -> None:
        bar = self.query_one("#evict-progress", ProgressBar)
        bar.update(total=max(self.preview.matched, matched, 1), progress=matched)
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self.query_one("#evict-rate", Static).update(f"{evicted:,} removed · {evicted / elapsed:,.0f} keys/s")

    def _finish(self, result: EvictResult) -> None:
        text = summary(result, self.inst.name)
        severity = "error" if result.error else "warning" if result.cancelled else "information"
        app = self.app
        self.dismiss(result)
        # After the dismiss, so the toast lands on the screen that stays.
        app.notify(text, title="evict", severity=severity, markup=False, timeout=8)

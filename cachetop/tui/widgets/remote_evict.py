"""Evict from a dashboard attached to a daemon: the daemon dry-runs, checks, runs and audits.

    request_remote_evict(app, source, "cache-1", EvictRequest(keys=(b"hot:1",)))

confirm_evict.request_evict sends here when the source is a RemoteActions (sources/link.py).
Nothing here talks to a cache: the daemon's /api/v1/actions/evict answers the dry run with a
plan (count and examples), this modal shows it, and Evict confirms exactly that plan; Cancel
declines it (the daemon's audit log has both). Without an action token the dashboard is
read-only and says so.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from cachetop.actions.console import TYPE_NAME_ABOVE
from cachetop.actions.evict import EvictRequest
from cachetop.sources.link import RemoteActionError, RemoteActions
from cachetop.util.safe_text import display_key

READ_ONLY = "read-only: attached without an action token ($CACHETOP_ACTION_TOKEN or --action-token-file)"


def request_body(request: EvictRequest) -> dict[str, Any]:
    if request.keys:
        return {"keys": [base64.b64encode(k).decode("ascii") for k in request.keys]}
    idle = {} if request.idle_over_s is None else {"idle_over_s": request.idle_over_s}
    if request.pattern is not None:
        return {"pattern": request.pattern.decode("utf-8", "surrogateescape"), **idle}
    return {"prefix": (request.prefix or b"").decode("utf-8", "surrogateescape"), **idle}


def request_remote_evict(app: App[Any], source: RemoteActions, instance: str, request: EvictRequest) -> None:
    if not source.can_act or bool(getattr(app, "_read_only", False)):
        text = (
            (source.read_only_reason or READ_ONLY)
            if not source.can_act
            else "refused: this dashboard runs with --read-only"
        )
        app.notify(text, title="read-only", severity="error", markup=False, timeout=8)
        return
    app.run_worker(_dry_run(app, source, instance, request), group="evict", name="remote evict dry run")


async def _dry_run(app: App[Any], source: RemoteActions, instance: str, request: EvictRequest) -> None:
    try:
        plan = await source.evict_dry_run(instance, request_body(request))
    except RemoteActionError as exc:
        app.notify(str(exc), title="evict", severity="error", markup=False, timeout=10)
        return
    await app.push_screen(RemoteConfirmScreen(source, instance, request.label(), plan))


class RemoteConfirmScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    RemoteConfirmScreen { align: center middle; }
    RemoteConfirmScreen > Vertical { width: 72; height: auto; border: thick $error; background: $surface;
                                     padding: 1 2; }
    RemoteConfirmScreen #evict-what { height: auto; }
    RemoteConfirmScreen Horizontal { height: auto; margin-top: 1; }
    RemoteConfirmScreen Button { margin-right: 2; }
    RemoteConfirmScreen Button:focus { text-style: bold reverse; }
    RemoteConfirmScreen #evict-keys { height: auto; margin-top: 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, source: RemoteActions, instance: str, label: str, plan: dict[str, Any]) -> None:
        super().__init__()
        self.source = source
        self.instance = instance
        self.label = label
        self.plan = plan
        self.matched = int(plan.get("matched", 0))
        self.must_type = self.matched > TYPE_NAME_ABOVE
        self.running = False

    def compose(self) -> ComposeResult:
        name = display_key(self.instance, 40)
        with Vertical():
            yield Static(f"Evict from {name} ({self.label}) through the daemon", markup=False)
            yield Static(display_key(str(self.plan.get("summary", "")), 400), id="evict-what", markup=False)
            if self.must_type:
                yield Input(placeholder=f"type {name} to confirm", id="evict-type")
            with Horizontal():
                yield Button("Evict", variant="error", id="evict-confirm", disabled=self._blocked(""))
                yield Button("Cancel", id="evict-cancel")
            hint = "the daemon checks, runs and audits it · Tab, Enter: evict · Esc: cancel"
            yield Static(hint, id="evict-keys", markup=False)

    def on_mount(self) -> None:
        self.query_one("#evict-type" if self.must_type else "#evict-cancel").focus()

    def _blocked(self, typed: str) -> bool:
        return self.matched == 0 or (self.must_type and typed != self.instance)

    @on(Input.Changed, "#evict-type")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#evict-confirm", Button).disabled = self._blocked(event.value)

    @on(Button.Pressed, "#evict-confirm")
    def _confirm(self) -> None:
        if not self.query_one("#evict-confirm", Button).disabled and not self.running:
            self.running = True
            self.query_one("#evict-what", Static).update("evicting on the daemon…")
            self.app.run_worker(self._send(True), group="evict", name="remote evict")

    @on(Button.Pressed, "#evict-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        if not self.running:
            self.running = True
            self.app.run_worker(self._send(False), group="evict", name="remote evict declined")

    async def _send(self, confirm: bool) -> None:
        app = self.app
        try:
            result = await self.source.evict_confirm(str(self.plan.get("plan", "")), confirm)
        except RemoteActionError as exc:
            self.dismiss(None)
            app.notify(str(exc), title="evict", severity="error", markup=False, timeout=10)
            return
        self.dismiss(None)
        if confirm:
            severity = "error" if result.get("error") else "information"
            app.notify(
                str(result.get("summary", "")), title="evict", severity=severity, markup=False, timeout=8
            )

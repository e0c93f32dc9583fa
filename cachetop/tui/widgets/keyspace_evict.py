"""The Keyspace tab's "evict idle keys": ask how idle and which keys, then the usual evict path.

The answer becomes an EvictRequest(prefix or pattern, idle_over_s) handed to request_evict, so it gets the
same read-only refusal, exact dry run (every key's OBJECT IDLETIME), confirmation modal (typing the
instance name above 1000 keys), budget, progress and audit lines as the Hot keys tab's evict.
Read-only is checked before asking, so nobody types an answer only to be refused.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from cachetop.actions.audit import ReadOnlyError, check_writable
from cachetop.actions.evict import EvictRequest
from cachetop.tui.instances import live_instance
from cachetop.tui.widgets.confirm_evict import request_evict
from cachetop.util.durations import parse_duration
from cachetop.util.safe_text import display_key

DEFAULT_IDLE = "1d"


def usable(prefix: object) -> bool:
    """A report's prefix names its keys exactly unless it was escaped or cut there (a backslash or
    an ellipsis: the raw bytes are not known here)."""
    return isinstance(prefix, str) and bool(prefix) and "\\" not in prefix and "…" not in prefix


def idle_request(idle_text: str, keys: str, prefixes: frozenset[str] = frozenset()) -> EvictRequest:
    """The request for the answers, or ValueError with what is wrong. `keys` is one of the report's
    prefixes (exactly the keys the report counted under it: `user:*:cart` leaves `user:1:cart:old`
    alone) or else a SCAN glob."""
    seconds = parse_duration(idle_text)
    if seconds < 1:
        raise ValueError("idle over: at least 1s (the server counts idle time in whole seconds)")
    keys = keys or "*"
    if keys in prefixes:
        return EvictRequest(prefix=keys.encode(), idle_over_s=math.ceil(seconds))
    return EvictRequest(pattern=keys.encode(), idle_over_s=math.ceil(seconds))


def ask_idle_evict(app: App[Any], instance: str, prefix: str | None, prefixes: frozenset[str]) -> None:
    """`i`: the selected prefix (of the report's `prefixes`) is offered, else every key."""
    cfg: Any = app
    inst = live_instance(cfg, instance)
    if inst is None:
        return
    if inst.target.kind == "memcached":
        prefixes = frozenset()  # memcached's idle evict takes a glob (the metadump has no roll-up)
    offered = (
        prefix if prefix is not None and usable(prefix) and (prefix in prefixes or not prefixes) else "*"
    )
    request = idle_request(DEFAULT_IDLE, offered, prefixes)
    try:
        check_writable(inst, read_only=bool(cfg.read_only), action="evict", config_path=cfg.config.path)
    except ReadOnlyError:
        request_evict(app, instance, request)  # refuses, audits and says why
        return

    def chosen(answer: EvictRequest | None) -> None:
        if answer is not None:
            request_evict(app, instance, answer)

    app.push_screen(IdleEvictScreen(instance, offered, prefixes), chosen)


class IdleEvictScreen(ModalScreen[EvictRequest | None]):
    DEFAULT_CSS = """
    IdleEvictScreen { align: center middle; }
    IdleEvictScreen > Vertical { width: 64; height: auto; border: thick $warning; background: $surface;
                                 padding: 1 2; }
    IdleEvictScreen Input { margin-top: 1; }
    IdleEvictScreen Horizontal { height: auto; margin-top: 1; }
    IdleEvictScreen Button { margin-right: 2; }
    IdleEvictScreen #idle-error { color: $error; height: auto; }
    IdleEvictScreen #idle-keys { color: $text-muted; height: auto; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "#idle-over"

    def __init__(self, instance: str, keys: str, prefixes: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.instance = instance
        self.keys = keys
        self.prefixes = prefixes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Evict idle keys from {display_key(self.instance, 40)}", markup=False)
            yield Input(value=DEFAULT_IDLE, placeholder="idle over: 1h, 1d, 7d", id="idle-over")
            yield Input(
                value=self.keys, placeholder="keys: a prefix of the report, or a glob", id="idle-pattern"
            )
            yield Static("", id="idle-error", markup=False)
            with Horizontal():
                yield Button("Dry run", variant="warning", id="idle-go")
                yield Button("Cancel", id="idle-cancel")
            yield Static(
                "every key is checked (exact count) before anything is asked · Enter: dry run · Esc: cancel",
                id="idle-keys",
                markup=False,
            )

    def _go(self) -> None:
        idle = self.query_one("#idle-over", Input).value
        pattern = self.query_one("#idle-pattern", Input).value.strip()
        try:
            request = idle_request(idle, pattern, self.prefixes)
        except ValueError as exc:
            self.query_one("#idle-error", Static).update(display_key(str(exc), 120))
            return
        self.dismiss(request)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self._go()

    @on(Button.Pressed, "#idle-go")
    def _pressed(self) -> None:
        self._go()

    @on(Button.Pressed, "#idle-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

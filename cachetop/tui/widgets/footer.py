"""The key line at the bottom, fitted to the terminal: a key that does not fit is left out whole
(help lists every key), never cut mid-word as Textual's Footer does at 80 columns
(`- Interv`). The least needed go first: the interval keys, refresh, pause, help."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# Actions left out first when the line is too narrow, in this order (a pair goes together);
# then from the right.
DROP_FIRST: tuple[tuple[str, ...], ...] = (
    ("slower", "faster"),
    ("refresh",),
    ("toggle_pause",),
    ("help",),
    ("next_sort",),
)


def key_width(key_display: str, description: str) -> int:
    """Cells a FooterKey takes: ` key ` then `description `."""
    return cell_len(key_display) + 2 + (cell_len(description) + 1 if description else 0)


def fitting(widths: list[tuple[str, int]], room: int) -> set[int]:
    """Indexes of the keys shown: all if they fit, else without DROP_FIRST's, then the rightmost."""
    shown = set(range(len(widths)))
    steps = [[i for i, (a, _) in enumerate(widths) if a in actions] for actions in DROP_FIRST]
    listed = {i for step in steps for i in step}
    steps += [[i] for i in reversed(range(len(widths))) if i not in listed]
    for step in steps:
        if sum(widths[j][1] for j in shown) <= room:
            break
        shown.difference_update(step)
    return shown


class FitFooter(Footer):
    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        keys: list[tuple[Any, bool, str]] = []
        seen: set[str] = set()
        for _node, binding, enabled, tooltip in active.values():
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                keys.append((binding, enabled, tooltip))
        room = self.size.width or self.app.size.width
        palette = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        if palette is not None:
            _node, binding, _enabled, _tooltip = palette
            # docked right: its own padding-right and border-left
            room -= key_width(self.app.get_key_display(binding), binding.description) + 2
        widths = [
            (binding.action, key_width(self.app.get_key_display(binding), binding.description))
            for binding, _, _ in keys
        ]
        shown = fitting(widths, room)
        for i, (binding, enabled, tooltip) in enumerate(keys):
            if i in shown:
                yield FooterKey(
                    binding.key,
                    self.app.get_key_display(binding),
                    binding.description,
                    binding.action,
                    disabled=not enabled,
                    tooltip=tooltip,
                ).data_bind(compact=Footer.compact)
        if palette is not None:
            _node, binding, enabled, tooltip = palette
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready:
            self.call_after_refresh(self.recompose)

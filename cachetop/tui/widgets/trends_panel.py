"""The Trends tab: this instance's last bucket against the same bucket one and seven seasons back,
keys and prefixes that appeared or vanished, hit ratio by hour of day, and the next bucket's
predicted keys with each predictor's precision (cachetop/history/report.py makes the text).

Reads the history file only (no server traffic), in a worker thread, when the tab is shown and
every REFRESH_S while it stays shown: the history changes once per bucket.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.widgets import Static

from cachetop.engine.config import Config
from cachetop.util.safe_text import display_key

REFRESH_S = 5.0


def trends_text(config: Config, instance: str, width: int) -> str:
    from cachetop.history.config import history_settings, key_separators
    from cachetop.history.report import build_report, render_text
    from cachetop.history.store import HistoryStore

    settings = history_settings(config)
    store = HistoryStore(config.settings.state_dir, settings, writable=False)
    try:
        separators = key_separators(config)
        report = build_report(store, instance, settings, separators=separators)
    finally:
        store.close()
    if report is None:
        return (
            "No history of this instance yet.\n\n"
            # One paragraph, no hard breaks: the Static wraps it to the width (a break at 80 columns
            # left a one-word line on an 80x24 terminal).
            "cachetop keeps one row per instance and bucket ([history] bucket, default 1h) while hot keys "
            "are sampled; the first one is stored when its bucket closes. With `cachetop daemon` "
            "running, this tab shows the daemon's history. See docs/trends.md."
        )
    return "\n".join(render_text(report, width=max(40, width)))


class TrendsPanel(Static):
    def __init__(self, instance: str, **kwargs: Any) -> None:
        super().__init__("reading the history…", markup=False, **kwargs)
        self.instance = instance

    def on_mount(self) -> None:
        self.refresh_trends()
        self.set_interval(REFRESH_S, self.refresh_trends)

    def on_resize(self) -> None:
        self.refresh_trends()  # the tab was opened (it had no size while hidden), or the terminal resized

    def refresh_trends(self) -> None:
        if self.is_mounted and self.display and self.size.width:
            self._load(self.size.width)

    @work(thread=True, exclusive=True, group="trends")
    def _load(self, width: int) -> None:
        app: Any = self.app
        try:
            text = trends_text(app.config, self.instance, width)
        except Exception as exc:  # an unreadable history file: say so in the tab
            text = f"history could not be read: {type(exc).__name__}: {display_key(str(exc), 200)}"
        if self.is_mounted:
            app.call_from_thread(self.update, Text(text))

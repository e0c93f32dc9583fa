"""The dashboard app: renders a Source's Snapshots, and nothing else.

The Source (engine/source.py) is the live Monitor, a recording being replayed, or any other
publisher of Snapshots; the app depends on the protocol only, and offers pause, refresh, +/-,
step and seek where the source declares them (SourceCapabilities). The Monitor runs in the same
asyncio loop as Textual (run_dashboard, in cachetop/tui/run.py, starts it around the app), so a
poll never blocks the screen and no thread touches a widget. The app keeps bounded history,
decides toasts on status changes, and hands each Snapshot to the screen on top.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from cachetop.engine.config import Config
from cachetop.engine.poller import Poller
from cachetop.engine.source import Source, SourceCapabilities, Timeline, live_pollers
from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.tui.columns import overview_columns
from cachetop.tui.health import Health
from cachetop.tui.history import History
from cachetop.tui.overview_rows import FOLD_ABOVE, ViewState
from cachetop.util.safe_text import display_key

INTERVAL_STEPS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
MAX_TOASTS = 5  # status changes in one snapshot toasted one by one; more are summed up
THEMES = {"dark": "textual-dark", "light": "textual-light"}


class CachetopApp(App[int]):
    CSS_PATH = "cachetop.tcss"
    TITLE = "cachetop"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help", key_display="?"),
        # Only where the source can step and seek (a replay; check_action hides them otherwise);
        # ahead of the live keys, so a narrow footer keeps them and leaves out the interval keys first.
        Binding("left_square_bracket", "step(-1)", "-1", key_display="["),
        Binding("right_square_bracket", "step(1)", "+1", key_display="]"),
        Binding("left_curly_bracket", "step(-10)", "-10", key_display="{"),
        Binding("right_curly_bracket", "step(10)", "+10", key_display="}"),
        Binding("less_than_sign", "seek(0)", "first", key_display="<"),
        Binding("greater_than_sign", "seek(-1)", "last", key_display=">"),
        Binding("p", "toggle_pause", "Pause"),
        Binding("r", "refresh", "Refresh"),
        Binding("plus,equals_sign", "slower", "Slower", key_display="+"),
        Binding("minus", "faster", "Faster", key_display="-"),
        Binding("t", "toggle_theme", "Theme", show=False),
    ]

    # Which capability each source-driven key needs. Without a source (fixed data: tests,
    # screenshots) the live keys show, as they do on a live screen, and step/seek do not.
    NEEDS: ClassVar[dict[str, Callable[[SourceCapabilities], bool]]] = {
        "step": lambda can: can.step,
        "seek": lambda can: can.seek,
        "toggle_pause": lambda can: can.pause,
        "refresh": lambda can: can.refresh,
        "slower": lambda can: can.pace,
        "faster": lambda can: can.pace,
    }
    WITHOUT_SOURCE = SourceCapabilities(pause=True, refresh=True, pace=True)

    @property
    def capabilities(self) -> SourceCapabilities:
        """What the source behind the screen can do (engine/source.py)."""
        return self.WITHOUT_SOURCE if self.monitor is None else self.monitor.capabilities

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        needs = self.NEEDS.get(action)
        return needs is None or needs(self.capabilities)

    def _timeline(self) -> Timeline | None:
        return self.monitor if isinstance(self.monitor, Timeline) else None

    def action_step(self, frames: int) -> None:
        """A timeline (a replay): pause and move `frames` frames (negative: back)."""
        timeline = self._timeline()
        if timeline is not None and self.capabilities.step:
            timeline.step(frames)
        self._refresh_chrome()

    def action_seek(self, index: int) -> None:
        """A timeline (a replay): pause on the first (0) or the last (-1) frame."""
        timeline = self._timeline()
        if timeline is not None and self.capabilities.seek:
            timeline.seek(index=timeline.frame_count - 1 if index < 0 else index)
        self._refresh_chrome()

    def __init__(
        self,
        config: Config,
        *,
        monitor: Source | None = None,
        snapshots: Sequence[Snapshot] = (),
        theme: str | None = None,
        read_only: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        # The Source of Snapshots (the name is older than the protocol); None: fixed data (tests,
        # screenshots).
        self.monitor: Source | None = monitor
        self._read_only = read_only
        self.history = History()
        self.health = Health.from_config(config)
        self.view = ViewState()
        self.latest: Snapshot | None = None
        self.snapshots_seen = 0
        self._fixed = list(snapshots)
        self._statuses: dict[str, Status] = {}
        self.alerts: Any = None  # an alerts state source (AlertService) when the alerts build runs
        self.startup_notices: list[str] = []  # said as toasts once the screen is up
        self._unsubscribe: Any = None
        self.theme = THEMES.get(theme or "dark", "textual-dark")

    # --- lifecycle ----------------------------------------------------------------------------

    def on_mount(self) -> None:
        from cachetop.hotkeys import suspend
        from cachetop.tui.screens.overview import OverviewScreen

        # Textual's driver has its SIGTSTP handler now: ours goes in front of it, so a Ctrl-Z or
        # kill -TSTP ends MONITOR and watch streams before the process stops.
        suspend.install()

        self.push_screen(OverviewScreen())
        for notice in self.startup_notices:
            self.notify(notice, severity="warning", markup=False, timeout=10)
        for snap in self._fixed:
            self.on_snapshot(snap, toast=False)
        if self.monitor is not None:
            self.attach_monitor(self.monitor)

    @property
    def interval(self) -> float:
        """The source's interval: it owns it (+/- ask it to change); the config's without one."""
        return self.config.settings.interval if self.monitor is None else self.monitor.interval

    def live_pollers(self) -> Sequence[Poller]:
        """The pollers behind the source, where it watches live servers (not a replay)."""
        return live_pollers(self.monitor)

    @property
    def read_only(self) -> bool:
        """Refuse destructive actions: asked for, or no live server behind the source."""
        return self._read_only or (self.monitor is not None and not self.monitor.capabilities.act)

    def attach_monitor(self, monitor: Source) -> None:
        """Starts showing `monitor`'s Snapshots (run_app attaches it once it has started, which
        for a large fleet is after the first frame)."""
        self.monitor = monitor
        self.refresh_bindings()  # the keys its capabilities allow
        if self._unsubscribe is not None:
            return
        self._unsubscribe = monitor.subscribe(self.on_snapshot)
        if monitor.latest is not None:
            self.on_snapshot(monitor.latest, toast=False)
        self._refresh_chrome()

    def say(self, notice: str) -> None:
        """A startup notice (hot keys not sampled, alerts locked): a toast once the screen is up."""
        if self.is_running and self.screen_stack:
            self.notify(notice, severity="warning", markup=False, timeout=10)
        else:
            self.startup_notices.append(notice)

    def exit(self, *args: Any, **kwargs: Any) -> None:
        """Quitting (q, ctrl+c, a signal) first stops new polls: in a large fleet they would keep
        the loop busy while the app shuts down, and they are about to be cancelled anyway."""
        if self.monitor is not None and self.monitor.capabilities.pause:
            self.monitor.pause()
            self.monitor.refresh_now()  # wakes every poller from its probes: paused, it waits
        super().exit(*args, **kwargs)

    @property
    def paused(self) -> bool:
        return bool(self.monitor is not None and self.monitor.paused)

    def on_snapshot(self, snap: Snapshot, toast: bool = True) -> None:
        """The Monitor's subscriber: runs in the event loop once per interval. Keep it quick."""
        self.latest = snap
        self.snapshots_seen += 1
        self.history.add(snap)
        self.view.fold_if_large(snap.instances)
        if toast:
            self._toast_changes(snap)
        self._statuses = {i.name: i.status for i in snap.instances}
        if not self.is_running:
            return
        for screen in self.screen_stack:
            show = getattr(screen, "show_snapshot", None)
            if show is not None and screen.is_mounted and screen is self.screen:
                show(snap)

    def _toast_changes(self, snap: Snapshot) -> None:
        changed: list[InstanceMetrics] = []
        for inst in snap.instances:
            before = self._statuses.get(inst.name)
            if before is None or before == inst.status or inst.status == Status.UNKNOWN:
                continue
            if before == Status.UNKNOWN and len(snap.instances) > FOLD_ABOVE:
                continue  # a large fleet's first answers: thousands, and no news
            if inst.status == Status.UP and before == Status.UNKNOWN:
                continue  # its first poll: nothing came back
            changed.append(inst)
        if len(changed) > MAX_TOASTS:  # a rack going down: one toast, not a thousand
            up = sum(inst.status == Status.UP for inst in changed)
            down = len(changed) - up
            parts = [f"{down:,} went down"] if down else []
            parts += [f"{up:,} came back up"] if up else []
            self.notify(
                f"{len(changed):,} instances changed: {', '.join(parts)}", severity="error", timeout=8
            )
            return
        for inst in changed:
            name = display_key(inst.name, 40)
            if inst.status == Status.UP:
                self.notify(f"{name} is back up", title="up", severity="information", markup=False)
            elif inst.status != Status.UP:
                reason = display_key(inst.error or str(inst.status), 80)
                self.notify(
                    f"{name}: {inst.status}: {reason}",
                    title="down",
                    severity="error",
                    markup=False,
                    timeout=8,
                )

    # --- actions ------------------------------------------------------------------------------

    def action_help(self) -> None:
        from cachetop.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_pause(self) -> None:
        if self.monitor is None or not self.monitor.capabilities.pause:
            return
        if self.monitor.paused:
            self.monitor.resume()
            self.monitor.refresh_now()
        else:
            self.monitor.pause()
        self._refresh_chrome()

    def action_refresh(self) -> None:
        if self.monitor is not None and self.monitor.capabilities.refresh:
            if self.monitor.paused:
                self.monitor.resume()
            self.monitor.refresh_now()
        self._refresh_chrome()

    def _set_interval(self, seconds: float) -> None:
        if self.monitor is None or not self.monitor.capabilities.pace:
            return
        self.monitor.set_interval(seconds)
        self.notify(f"polling every {self.interval:g}s", timeout=2, markup=False)
        self._refresh_chrome()

    def action_slower(self) -> None:
        bigger = [s for s in INTERVAL_STEPS if s > self.interval + 1e-9]
        self._set_interval(bigger[0] if bigger else INTERVAL_STEPS[-1])

    def action_faster(self) -> None:
        smaller = [s for s in INTERVAL_STEPS if s < self.interval - 1e-9]
        self._set_interval(smaller[-1] if smaller else INTERVAL_STEPS[0])

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def watch_theme(self, _theme: str) -> None:
        for screen in self.screen_stack:
            restyle = getattr(screen, "restyle", None)
            if restyle is not None:
                restyle()

    def alerts_view(self) -> Any:
        """The alerts state for the header badge and the alerts panel, when alerts run."""
        if self.alerts is None:
            return None
        state = getattr(self.alerts, "state", None)
        try:
            return state() if callable(state) else self.alerts
        except Exception:  # the badge must never take the dashboard down
            return None

    def _refresh_chrome(self) -> None:
        from cachetop.tui.widgets.header import FleetHeader

        for screen in self.screen_stack:
            for header in screen.query(FleetHeader):
                header.refresh_from_app()

    # --- command palette: every action is listed ----------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield SystemCommand("Help", "Show the key bindings (?)", self.action_help)
        can = self.capabilities  # only what the source can do
        if can.pause:
            yield SystemCommand("Pause / resume", "Stop or restart polling (p)", self.action_toggle_pause)
        if can.refresh:
            yield SystemCommand("Refresh now", "Poll every instance now (r)", self.action_refresh)
        if can.pace:
            yield SystemCommand("Interval longer", "Poll less often (+)", self.action_slower)
            yield SystemCommand("Interval shorter", "Poll more often (-)", self.action_faster)
        yield SystemCommand("Toggle theme", "Switch between dark and light (t)", self.action_toggle_theme)
        overview = self._overview()
        if overview is not None:
            yield SystemCommand("Filter", "Filter instances by name or tag (/)", overview.action_filter)
            yield SystemCommand("Clear filter", "Show every instance (escape)", overview.action_clear_filter)
            yield SystemCommand(
                "Group by tag", "Group rows by their first tag on/off (g)", overview.action_toggle_group
            )
            yield SystemCommand("Fold groups", "Fold or unfold every group (c)", overview.action_collapse_all)
            yield SystemCommand(
                "Open instance", "Details of the selected instance (enter)", overview.action_open
            )
            for col in overview_columns():
                yield SystemCommand(
                    f"Sort by {col.label}",
                    "Again to reverse (s cycles columns, S reverses)",
                    lambda key=col.key: overview.sort_by(key),
                )
        back = getattr(screen, "action_back", None)
        if back is not None:
            yield SystemCommand("Back", "Back to the overview (escape)", back)
        panels = screen.query("HotKeysPanel")
        if panels:
            yield SystemCommand(
                "Evict hot key",
                "Evict the selected hot key, after a dry run (e)",
                panels.first().action_evict_key,
            )
        yield SystemCommand("Quit", "Quit cachetop (q)", self.action_quit)

    def _overview(self) -> Any:
        from cachetop.tui.screens.overview import OverviewScreen

        for screen in self.screen_stack:
            if isinstance(screen, OverviewScreen):
                return screen
        return None

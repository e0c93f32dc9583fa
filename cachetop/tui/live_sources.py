"""Optional live sources next to the Monitor: hot-key collectors and the alert service.

Textual-free. Each is started only when its package is present and the config asks for it,
and stopped (closing its connections) however the dashboard ends. Hot-key views are attached
to the next Snapshot through Poller.extras["hotkeys"]; the alert service evaluates every
Snapshot and the app reads its state for the header badge and the Alerts tab.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)


class LiveSources:
    def __init__(
        self, config: Any, monitor: Any, app: Any, *, hotkeys: bool = True, alerts: bool = True
    ) -> None:
        self.config = config
        self.monitor = monitor
        self.app = app
        self.want_hotkeys = hotkeys
        self.want_alerts = alerts
        self.collectors: dict[str, Any] = {}
        self._own_seen: dict[str, int] = {}
        self.alert_service: Any = None
        self._unsubscribe: list[Any] = []

    async def __aenter__(self) -> LiveSources:
        try:
            if self.want_hotkeys:
                await self._start_hotkeys()
            if self.want_alerts:
                await self._start_alerts()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for collector in self.collectors.values():
            with contextlib.suppress(Exception):
                await collector.stop()
        self.collectors.clear()
        if self.alert_service is not None:
            with contextlib.suppress(Exception):
                await self.alert_service.stop()
            self.alert_service = None
            self.app.alerts = None

    # --- hot keys ----------------------------------------------------------------------------

    async def _start_hotkeys(self) -> None:
        wanted = [p for p in self.monitor.pollers if getattr(p.inst, "hotkeys", "auto") != "off"]
        if not wanted:
            return
        try:
            from cachetop.hotkeys.collector import HotKeyCollector
            from cachetop.hotkeys_config import HotKeySettings
        except ImportError:
            return
        settings = self.config.sections.get("hotkeys") or HotKeySettings()
        for poller in wanted:
            collector = HotKeyCollector(
                poller.inst,
                settings,
                window_s=self.config.settings.window,
                timeout=self.config.timeout_of(poller.inst),
            )
            await collector.start()
            self.collectors[poller.inst.name] = collector
        self._unsubscribe.append(self.monitor.subscribe(self._attach_hotkeys))

    def _attach_hotkeys(self, _snapshot: Any) -> None:
        for poller in self.monitor.pollers:
            collector = self.collectors.get(poller.inst.name)
            if collector is None:
                continue
            try:
                poller.extras["hotkeys"] = collector.snapshot()
            except Exception:  # a view that fails to build is skipped, never fatal
                log.debug("hot-key view failed", exc_info=True)
                continue
            # The collector's own commands (MONITOR, CLIENT LIST...) are not the application's
            # traffic: hand them to the backend, which leaves them out of ops/s.
            own = getattr(poller.backend, "own_commands", None)
            sent = int(collector.own_commands)
            new = sent - self._own_seen.get(poller.inst.name, 0)
            if own is not None and new > 0:
                own["hotkeys"] += new
                self._own_seen[poller.inst.name] = sent

    # --- alerts ------------------------------------------------------------------------------

    async def _start_alerts(self) -> None:
        sections = self.config.sections or {}
        if not any(name in sections for name in ("rule", "alerts")):
            return
        try:
            from cachetop.alerts.service import AlertService, AlertsLocked
        except ImportError:
            return
        service = AlertService(self.config)
        try:
            await service.start()
        except AlertsLocked:
            self.app.notify(
                "alerts are evaluated by another cachetop (a daemon?) with this state_dir; "
                "this dashboard shows no alerts",
                severity="warning",
                markup=False,
            )
            return
        self.alert_service = service
        self._unsubscribe.append(service.attach(self.monitor))
        self.app.alerts = service

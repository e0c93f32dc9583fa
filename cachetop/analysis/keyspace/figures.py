"""`expiry_cliff_keys` for alert rules, views and exports, from the last keyspace analysis.

No background scan: the value comes from each instance's last report (the one `cachetop
keyspace` or the Keyspace tab saved in the state dir, or one handed over in this process with
`offer`), re-evaluated against the clock: the largest cliff due within `cliff_horizon` (a cliff
that has passed no longer counts). An instance never analysed has no value (rules skip it).

A FigureContributor (engine/figures.py): figures() is asked for every instance at every
snapshot, so it only looks up what is held; the state dir is read again for an instance at most
every REREAD_S seconds, and only when its file changed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cachetop.analysis.keyspace.cliffs import largest_cliff
from cachetop.analysis.keyspace.config import keyspace_settings
from cachetop.analysis.keyspace.store import load_report, report_path
from cachetop.engine.figures import Figures

METRIC = "expiry_cliff_keys"
REREAD_S = 5.0


class KeyspaceFigures:
    def __init__(
        self,
        state_dir: Path,
        *,
        horizon_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.horizon_s = horizon_s
        self.clock = clock
        self.monotonic = monotonic
        self._reports: dict[str, tuple[dict[str, Any], float]] = {}
        self._checked: dict[str, tuple[float, float | None]] = {}  # name -> (checked at, file mtime)

    @classmethod
    def from_config(cls, config: Any) -> KeyspaceFigures:
        return cls(config.settings.state_dir, horizon_s=keyspace_settings(config).cliff_horizon)

    def offer(self, report_json: dict[str, Any], saved_at: float | None = None) -> None:
        """A report made in this process (the Keyspace tab): counts at once."""
        self._reports[str(report_json["name"])] = (
            report_json,
            self.clock() if saved_at is None else saved_at,
        )

    def _refresh(self, instance: str) -> None:
        now = self.monotonic()
        checked = self._checked.get(instance)
        if checked is not None and now - checked[0] < REREAD_S:
            return
        try:
            mtime: float | None = os.stat(report_path(self.state_dir, instance)).st_mtime
        except OSError:
            mtime = None
        if mtime is not None and (checked is None or checked[1] != mtime):
            found = load_report(self.state_dir, instance)
            held = self._reports.get(instance)
            if found is not None and (held is None or found[1] >= held[1]):
                self._reports[instance] = found
        self._checked[instance] = (now, mtime)

    def figures(self, instance: str) -> Figures | None:
        self._refresh(instance)
        held = self._reports.get(instance)
        if held is None:
            return None
        value = largest_cliff(held[0], self.clock(), self.horizon_s)
        return Figures(metrics={METRIC: round(value)}, extras={"keyspace": held})


def wanted(config: Any) -> bool:
    """Kept only where something reads it: a [keyspace] section, or a rule on expiry_cliff_keys."""
    if "keyspace" in getattr(config, "sections", {}):
        return True
    try:
        from cachetop.alerts.presets import effective_rules

        return any(r.metric == METRIC for r in effective_rules(config))
    except Exception:  # no alerts configured, or a config the alert service reports itself
        return False

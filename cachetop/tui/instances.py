"""Which InstanceConfig a screen should act on: the one its poller really polls.

A cluster node is not in the config (discovery made it), and a sentinel-followed instance lives
wherever the current master is, so the config's own entry would point at the wrong server.
"""

from __future__ import annotations

from typing import Any

from cachetop.backends.capabilities import FollowsMaster
from cachetop.engine.config import InstanceConfig
from cachetop.engine.source import live_pollers


def live_instance(app: Any, name: str) -> InstanceConfig | None:
    for poller in live_pollers(getattr(app, "monitor", None)):
        if poller.inst.name == name:
            backend = poller.backend  # a sentinel's: the current master
            moved = backend.polled_inst if isinstance(backend, FollowsMaster) else None
            return moved or poller.inst
    return next((i for i in app.config.instances if i.name == name), None)

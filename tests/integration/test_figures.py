"""Per-instance figures reach the Snapshot through one declared interface (engine/figures.py)."""

from __future__ import annotations

from cachetop.engine.figures import FigureContributor, Figures
from cachetop.engine.monitor import Monitor
from cachetop.model import Status
from cachetop.servers import LocalServer
from tests.monitoring import fast_config


class Counted:
    """A contributor with a known answer per instance, counting how often it is asked."""

    def __init__(self, answers: dict[str, Figures]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def figures(self, instance: str) -> Figures | None:
        self.asked.append(instance)
        return self.answers.get(instance)


class Broken:
    def figures(self, instance: str) -> Figures | None:
        raise RuntimeError("a contributor with a bug")


async def test_contributed_figures_land_in_each_snapshot_and_stop_when_removed(redis: LocalServer) -> None:
    config = fast_config(redis.url, "redis://127.0.0.1:1")  # the second one is down
    up, down = (inst.name for inst in config.instances)
    hot = Counted({up: Figures(metrics={"stampede_events": 4}, extras={"advice": ("split",)})})
    also = Counted({up: Figures(extras={"hot_slots": [{"slot": 7}]}), down: Figures(extras={"note": 1})})
    assert isinstance(hot, FigureContributor)
    async with Monitor(config) as mon:
        remove_hot = mon.add_figures(hot)
        mon.add_figures(Broken())  # logged and skipped: the snapshot still comes
        mon.add_figures(also)
        snap = await mon.wait_snapshot(lambda s: s.by_name(up).status == Status.UP, 5)
        row, dead = snap.by_name(up), snap.by_name(down)
        assert row.metrics["stampede_events"] == 4
        assert dict(row.extras) == {"advice": ("split",), "hot_slots": [{"slot": 7}]}
        # Metrics are shown only while up; extras always.
        assert dead.status == Status.DOWN and dead.metrics.get("stampede_events") is None
        assert dict(dead.extras) == {"note": 1}
        assert hot.asked[-2:] == [up, down]  # asked once per instance per snapshot
        remove_hot()
        remove_hot()  # a second call does nothing
        asked = len(hot.asked)
        later = await mon.wait_snapshot(lambda s: True, 5)
    assert len(hot.asked) == asked
    assert later.by_name(up).metrics.get("stampede_events") is None
    assert dict(later.by_name(up).extras) == {"hot_slots": [{"slot": 7}]}

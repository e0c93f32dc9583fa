"""The dashboard's advice on a live 3-master cluster: the hot shard's badge and the hot node's
advice come from real snapshots (Monitor + hot-key samplers), checked against the round."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cachetop.analysis.snapshot_advice import instance_advice, shard_imbalance
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.model import Snapshot, Status
from tests.cluster_fixtures import Cluster, three_masters  # noqa: F401
from tests.integration.test_cluster import cluster_config
from tests.integration.test_hotkey_advice import OTHERS_PER_NODE, masters_by_slot, port_of_key, rounds


@pytest.mark.slow
async def test_live_cluster_badge_and_advice(three_masters: Cluster) -> None:  # noqa: F811
    cluster = three_masters
    hot_port = port_of_key(masters_by_slot(cluster), b"hot:1")
    config = cluster_config(cluster, dead_seed=False)
    settings = replace(config.settings, window=3.0)
    hotkeys = HotKeySettings(monitor_on=1.0, monitor_off=0.5, big_keys=False)
    config = replace(config, settings=settings, sections={**config.sections, "hotkeys": hotkeys})
    hot_name = f"shop/127.0.0.1:{hot_port}"

    def ready(snap: Snapshot) -> bool:
        hot = snap.by_name(hot_name)
        if hot is None or len(snap.instances) != 3 or any(i.status != Status.UP for i in snap.instances):
            return False
        view = hot.extras.get("hotkeys")
        ops = [i.metric("ops_per_sec") or 0 for i in snap.instances]
        return view is not None and any(k.key == b"hot:1" for k in view.keys) and min(ops) > 500

    # A round: hot:1 takes 80 of 200 ops (79 GETs, 1 SET), 40 cold GETs a master.
    with rounds(cluster, [("GET", b"hot:1", 79), ("SET", b"hot:1", 1)]):
        async with Monitor(config) as mon, LiveSources(config, mon, alerts=False):
            snap = await mon.wait_snapshot(ready, 30)
    hot = snap.by_name(hot_name)
    assert hot is not None and hot.shard is not None
    # 120 of the round's 200 ops on the hot master: 1.8x the mean (windows of 3 s, not exact)
    assert shard_imbalance(snap)[("shop", hot.shard)] == pytest.approx(1.8, rel=0.15)
    result = instance_advice(snap, hot_name)
    assert result is not None and result.advice
    first = result.advice[0]
    assert (first.kind, first.key) == ("client_cache", "hot:1")
    real_share = 80 / (80 + OTHERS_PER_NODE) * 100
    assert first.expected_ops_reduction_pct == pytest.approx(real_share, abs=5)

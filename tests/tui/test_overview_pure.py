"""The overview's rows with plain numbers: node names, worst first, trend scale, integer counts."""

from __future__ import annotations

from dataclasses import replace

from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.tui.columns import layout
from cachetop.tui.health import Health
from cachetop.tui.history import History, sparkline
from cachetop.tui.labels import common_part, elide_common, node_label
from cachetop.tui.overview_rows import ViewState, build_rows, ordered, trend


def inst(
    name: str,
    ops: float | None = 10.0,
    hit: float | None = 90.0,
    status: Status = Status.UP,
    tags: tuple[str, ...] = (),
    address: str = "h:1",
) -> InstanceMetrics:
    metrics = {"ops_per_sec": ops, "hit_ratio": hit, "connections": 3.0}
    return InstanceMetrics(name, "redis", address, status, None, metrics, tags=tags)


def node(port: int, shard: str, role: str = "master", status: Status = Status.UP) -> InstanceMetrics:
    address = f"127.0.0.1:{port}"
    return replace(inst(f"127.0.0.1:7131/{address}", status=status, address=address), role=role, shard=shard)


CLUSTER = (node(7131, "0-5460"), node(7132, "5461-10922"), node(7133, "10923-16383"))


def names(rows: list, column: str = "name") -> list[str]:  # type: ignore[type-arg]
    return [r.cells[column][0] for r in rows]


def test_node_labels_keep_the_distinguishing_part() -> None:
    assert node_label("c/10.0.0.1:7000", "10.0.0.1:7000", 2) == "10.0.0.1:7000 s2"
    assert node_label("cache-main", "10.0.0.1:7000", None) is None
    assert common_part(["127.0.0.1:7131 s1", "127.0.0.1:7132 s2"]) == "127.0.0.1"
    assert common_part(["[::1]:7131", "[::1]:7132"]) == "[::1]"
    assert common_part(["127.0.0.1:7131"]) == "127.0.0.1"
    labels = {"a": "127.0.0.1:7131 s1", "b": "127.0.0.1:7132 s2"}
    assert elide_common(labels, 11) == {"a": "…:7131 s1", "b": "…:7132 s2"}
    assert elide_common(labels, 20) == labels


def test_cluster_rows_at_80_and_160_columns_are_distinct_and_show_the_port() -> None:
    snap = Snapshot(0.0, 10.0, CLUSTER)
    rows80 = build_rows(snap, History(), ViewState(), layout(80), Health())
    assert names(rows80) == [
        "Σ fleet (3)",
        "▾ s1 0-5460 (1)",
        "…:7131 s1",
        "▾ s2 5461-10922 (1)",
        "…:7132 s2",
        "▾ s3 10923-16383 (1)",
        "…:7133 s3",
    ]
    rows160 = build_rows(snap, History(), ViewState(), layout(160), Health())
    assert [c.width for c in layout(160) if c.key == "name"] == [36]  # the name column widened
    assert names(rows160)[2::2] == ["127.0.0.1:7131 s1", "127.0.0.1:7132 s2", "127.0.0.1:7133 s3"]


def test_worst_first_pins_down_then_firing_then_pending_whatever_the_sort() -> None:
    fleet = [
        inst("a", hit=50.0),
        inst("b", hit=99.0),
        inst("c", ops=None, hit=None, status=Status.DOWN),
        inst("d", hit=None),  # no reads: no hit ratio
        inst("e", hit=95.0),
    ]
    alerts = {"e": "firing", "b": "pending"}
    view = ViewState()
    view.sort_by("hit")  # ascending: worst hit ratio first
    assert [i.name for i in ordered(fleet, view, alerts)] == ["c", "e", "b", "a", "d"]
    view.worst_first = False
    assert [i.name for i in ordered(fleet, view, alerts)] == ["a", "e", "b", "c", "d"]  # no value: last
    # The config order, and the marker in the status cell.
    rows = build_rows(Snapshot(0.0, 10.0, tuple(fleet)), History(), ViewState(), layout(80), Health(), alerts)
    assert [r.key for r in rows] == ["__fleet__", "c", "e", "b", "a", "d"]
    assert names(rows, "status") == ["4/5", "DOWN", "▲ up", "△ up", "up", "up"]


def test_groups_sort_by_their_worst_member() -> None:
    fleet = [
        inst("a1", hit=99.0, tags=("alpha",)),
        inst("b1", hit=70.0, tags=("beta",)),
        inst("g1", hit=98.0, tags=("gamma",)),
        inst("g2", hit=None, status=Status.DOWN, tags=("gamma",)),
    ]
    snap = Snapshot(0.0, 10.0, tuple(fleet))
    keys = lambda view, alerts=None: [  # noqa: E731
        r.key for r in build_rows(snap, History(), view, layout(80), Health(), alerts)
    ]
    down_first = ["__fleet__", "__group__:gamma", "g2", "g1"]
    assert keys(ViewState()) == [*down_first, "__group__:alpha", "a1", "__group__:beta", "b1"]
    view = ViewState()
    view.sort_by("hit")
    assert keys(view) == [*down_first, "__group__:beta", "b1", "__group__:alpha", "a1"]
    # A firing alert lifts its group above the sort; its summary row carries the marker.
    rows = build_rows(snap, History(), view, layout(80), Health(), {"a1": "firing"})
    assert [r.key for r in rows][:5] == ["__fleet__", "__group__:gamma", "g2", "g1", "__group__:alpha"]
    assert rows[4].cells["status"][0] == "▲ 1/1"


def test_trend_has_a_minimum_span_and_conn_is_an_integer() -> None:
    # 1 command/s on an idle instance is a flat bottom line, not a full-height surge.
    assert trend([0.0, 0.0, 1.0, 0.0], 4) == "▁▁▂▁"
    assert sparkline([0.0, 0.0, 1.0, 0.0], 4, floor=None) == "▁▁█▁"  # the old scale
    assert trend([40000.0, 40800.0, 40000.0], 3) == "▁▂▁"  # 2% of a busy instance: a ripple
    assert trend([40000.0, 20000.0, 40000.0], 3) == "█▁█"  # halving: the full height
    history = History()
    for t, ops in enumerate((0.0, 0.0, 1.0, 0.0)):
        history.add(Snapshot(float(t), 10.0, (inst("idle", ops=ops),)))
    rows = build_rows(
        Snapshot(4.0, 10.0, (inst("idle", ops=0.0),)), History(), ViewState(), layout(160), Health()
    )
    assert rows[1].cells["conn"][0] == "3"
    rows = build_rows(
        Snapshot(4.0, 10.0, (inst("idle", ops=0.0),)), history, ViewState(), layout(160), Health()
    )
    assert rows[1].cells["trend"][0].strip() == "▁▁▂▁"

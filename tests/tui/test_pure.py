"""The dashboard's pure parts with plain numbers: layout, sparklines, fleet roll-up, health."""

from __future__ import annotations

from cachetop.alerts.rules import Rule
from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.tui.columns import layout
from cachetop.tui.health import Health
from cachetop.tui.history import History, downsample, fleet_summary, sparkline
from cachetop.tui.overview_rows import ViewState, build_rows, ordered


def inst(
    name: str, ops: float | None, hit: float | None, status: Status = Status.UP, tags=()
) -> InstanceMetrics:  # type: ignore[no-untyped-def]
    metrics = {"ops_per_sec": ops, "hit_ratio": hit, "latency_p99_ms": 2.0, "memory_used_pct": 50.0}
    return InstanceMetrics(name, "redis", "h:1", status, None, metrics, tags=tuple(tags))


def test_layout_drops_columns_in_order_as_the_screen_narrows() -> None:
    keys = lambda w: [c.key for c in layout(w)]  # noqa: E731
    assert keys(80) == ["name", "status", "hit", "ops", "p99", "mem", "err", "evict"]
    assert keys(60) == ["name", "status", "hit", "ops", "p99", "mem"]
    assert keys(160) == [
        "name",
        "kind",
        "status",
        "hit",
        "ops",
        "p50",
        "p99",
        "mem",
        "err",
        "evict",
        "conn",
        "trend",
        "note",
    ]
    for width in (80, 100, 160):
        assert sum(c.width + 2 for c in layout(width)) <= width - 2  # fits, with room for a scrollbar


def test_fleet_hit_ratio_is_weighted_by_traffic_and_ignores_down_instances() -> None:
    summary = fleet_summary(
        [inst("a", 900.0, 50.0), inst("b", 100.0, 100.0), inst("c", None, None, Status.DOWN)]
    )
    assert (summary.total, summary.up, summary.down) == (3, 2, 1)
    assert summary.ops_per_sec == 1000.0
    assert summary.hit_ratio == 55.0  # (900*50 + 100*100) / 1000, not the plain mean 75


def test_sparkline_and_downsample() -> None:
    assert sparkline([0.0, 4.0, 8.0], 3) == "▁▅█"
    assert sparkline([1.0, None, 1.0], 5) == "  █ █"  # right-aligned; a gap while down
    assert sparkline([2.0, 4.0], 2, floor=None) == "▁█"
    assert downsample([1.0, 3.0, 5.0, 7.0], 2) == [2.0, 6.0]
    assert downsample([1.0, None, None, 7.0], 2, "max") == [1.0, 7.0]
    assert downsample([None, None], 1) == [None]


def test_history_is_bounded() -> None:
    history = History(points=5)
    for t in range(12):
        history.add(Snapshot(float(t), 10.0, (inst("a", float(t), 90.0),)))
    assert history.of("a").values("ops_per_sec") == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert list(history.fleet_ops) == [7.0, 8.0, 9.0, 10.0, 11.0]


def test_sorting_puts_missing_values_last_and_grouping_by_first_tag() -> None:
    fleet = [
        inst("a", 10.0, 99.0, tags=["web"]),
        inst("b", None, None, Status.DOWN, ["api"]),
        inst("c", 30.0, 80.0),
    ]
    view = ViewState(worst_first=False)
    view.sort_by("ops")
    assert view.descending and [i.name for i in ordered(fleet, view)] == ["c", "a", "b"]
    view.sort_by("ops")
    assert [i.name for i in ordered(fleet, view)] == ["a", "c", "b"]  # reversed, b still last
    view.worst_first = True  # the default: the down instance pins to the top whatever the sort
    assert [i.name for i in ordered(fleet, view)] == ["b", "a", "c"]
    view.query = "tag:web"
    assert [i.name for i in ordered(fleet, view)] == ["a"]
    view.query = ""
    rows = build_rows(Snapshot(0.0, 10.0, tuple(fleet)), History(), ViewState(), layout(120), Health())
    assert [r.key for r in rows] == [
        "__fleet__",
        "__group__:api",
        "b",
        "__group__:web",
        "a",
        "__group__:(untagged)",
        "c",
    ]


def test_health_uses_rules_where_they_apply_else_standard_targets() -> None:
    web = inst("web-1", 10.0, 85.0, tags=["web"])
    other = inst("db-1", 10.0, 85.0)
    plain = Health()
    assert [plain.level(web, "hit_ratio", v) for v in (95.0, 85.0, 70.0)] == ["good", "warn", "bad"]
    assert [plain.level(web, "latency_p99_ms", v) for v in (9.9, 10.0, 60.0)] == ["good", "warn", "bad"]
    assert (
        plain.level(web, "memory_used_pct", 80.0) == "warn" and plain.level(web, "error_rate", 0.5) == "good"
    )
    ruled = Health(
        [
            Rule(
                name="hit",
                metric="hit_ratio",
                op="<",
                threshold=80.0,
                severity="critical",
                instances=("tag:web",),
            )
        ]
    )
    assert ruled.level(web, "hit_ratio", 85.0) == "good"  # the rule's 80 wins over the standard 90
    assert ruled.level(web, "hit_ratio", 79.0) == "bad"
    assert ruled.level(other, "hit_ratio", 85.0) == "warn"  # the rule does not select db-1


def test_cluster_nodes_group_by_shard_and_groups_fold() -> None:
    from dataclasses import replace

    fleet = [
        replace(inst("cc/10.0.0.1:7000", 5.0, 90.0), role="master", shard="0-8191"),
        replace(inst("cc/10.0.0.2:7000", 1.0, 90.0), role="replica", shard="0-8191"),
        replace(inst("cc/10.0.0.3:7000", 7.0, 90.0), role="master", shard="8192-16383"),
        inst("solo", 2.0, 95.0, tags=["web"]),
    ]
    snap = Snapshot(0.0, 10.0, tuple(fleet))
    view = ViewState()
    keys = [r.key for r in build_rows(snap, History(), view, layout(120), Health())]
    assert keys == [
        "__fleet__",
        "__group__:cc shard 0-8191",
        "cc/10.0.0.1:7000",
        "cc/10.0.0.2:7000",
        "__group__:cc shard 8192-16383",
        "cc/10.0.0.3:7000",
        "__group__:web",
        "solo",
    ]
    view.toggle_group("cc shard 0-8191")
    rows = build_rows(snap, History(), view, layout(120), Health())
    assert [r.key for r in rows][:3] == [
        "__fleet__",
        "__group__:cc shard 0-8191",
        "__group__:cc shard 8192-16383",
    ]
    folded = rows[1].cells["name"][0]
    assert folded.startswith("▸ s1 0-8191 (2)")
    # A folded group still sums its members: 5 + 1 ops/s.
    assert rows[1].cells["ops"][0] == "6.0"

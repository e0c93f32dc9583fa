"""Values in alert messages read as the metric's unit and precision: `0.04 ms`, never `0.04394`."""

from __future__ import annotations

from types import SimpleNamespace

from cachetop.alerts.engine import AlertEngine
from cachetop.alerts.notify.render import fields, plain_text, slack_blocks
from cachetop.alerts.rules import Rule, format_limit, format_value
from cachetop.alerts.service import _describe_transition
from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.tui.widgets.alerts_panel import alert_rows

SLOW = Rule(name="slow", metric="latency_p50_ms", op=">", threshold=0.005, channels=("ops",))


def test_each_unit_rounds_to_its_precision() -> None:
    assert format_value("latency_p50_ms", 0.04394) == "0.04 ms"
    assert format_value("latency_p99_ms", 187.349) == "187.35 ms"
    assert format_value("hit_ratio", 93.33333) == "93.3%"
    assert format_value("hit_ratio", 90.0) == "90.0%"
    assert format_value("error_rate", 0.004394) == "0.004%"  # not 0 but would round to 0: one more digit
    assert format_value("ops_per_sec", 1234.5678) == "1234.6 ops/s"
    assert format_value("memory_used_bytes", 1048576.0) == "1048576 bytes"
    assert format_value("connections", 7.0) == "7 clients"
    assert format_value("status", "down") == "down"
    assert format_value("hit_ratio", None) == "no data"
    # A threshold is shown as the rule wrote it.
    assert format_limit("latency_p50_ms", 0.005) == "0.005 ms"


def test_the_log_line_and_the_alerts_view_round_the_value() -> None:
    engine = AlertEngine([SLOW])
    inst = InstanceMetrics("cache-1", "redis", "h:1", Status.UP, None, {"latency_p50_ms": 0.04394})
    result = engine.evaluate(Snapshot(1_800_000_000.0, 10.0, (inst,)), now=0.0)
    assert [_describe_transition(t) for t in result.transitions] == [
        "alert slow on cache-1: ok -> firing (value 0.04 ms, warning)"
    ]
    view = SimpleNamespace(active=engine.active(), history=list(result.transitions))
    cells = [row.cells["value"][0] for row in alert_rows(view, None, 1_800_000_001.0)]
    assert cells == ["0.04 ms", "0.04 ms"]


def test_slack_and_email_show_the_rounded_value_and_the_threshold_as_written() -> None:
    alert = {
        "kind": "firing",
        "rule": "slow",
        "instance": "cache-1",
        "metric": "latency_p50_ms",
        "value": 0.04394,
        "op": ">",
        "threshold": 0.005,
        "severity": "warning",
        "active_for_s": 5.0,
        "started_at": 1_800_000_000.0,
    }
    assert ("Value", "0.04 ms") in fields(alert)
    assert ("Threshold", "> 0.005 ms") in fields(alert)
    text = plain_text({"alerts": [alert]})
    assert "  Value: 0.04 ms\n  Threshold: > 0.005 ms\n" in text
    (_, section) = slack_blocks({"alerts": [alert]})
    assert [f["text"] for f in section["fields"]][2:4] == ["*Value*\n0.04 ms", "*Threshold*\n&gt; 0.005 ms"]

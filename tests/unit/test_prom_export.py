"""Pure parts of issue 19: the rule translation, the Alertmanager config, the PromQL URL and the
Snapshot built from query results (plain values in, exact values out)."""

from __future__ import annotations

import fnmatch
import re

import pytest

from cachetop.alerts.alertmanager import alertmanager_config
from cachetop.alerts.channels import EmailChannel, PluginChannel, SlackChannel
from cachetop.alerts.prom_rules import duration, export_rules, glob_regex, prom_number, rule_expr
from cachetop.alerts.rules import Rule
from cachetop.model import Status
from cachetop.sources.prom_snapshot import LIVE_FACT, FleetReading, build_snapshot, history_frames
from cachetop.sources.promql import PromError, PromUrl, Series


@pytest.mark.parametrize(
    "pattern", ["cache-*", "eu-?-cache", "shop/[ab]*", "x[!0-9]y", "a.b+c", "plain", "*", "[]]x", "eu #1 ~*"]
)
def test_glob_regex_matches_what_fnmatch_matches(pattern: str) -> None:
    names = [
        "cache-1",
        "cache-",
        "eu-1-cache",
        "eu-12-cache",
        "shop/a1",
        "shop/c1",
        "xay",
        "x5y",
        "a.b+c",
        "aXb+c",
        "plain",
        "plainer",
        "eu #1 ~a",
        "eu #1",
        "]x",
        "x",
    ]
    regex = re.compile(glob_regex(pattern))
    for name in names:
        assert bool(regex.fullmatch(name)) == fnmatch.fnmatchcase(name, pattern), (pattern, name)


def test_durations_and_numbers_as_prometheus_writes_them() -> None:
    assert [duration(s) for s in (0, 0.25, 30, 90, 300, 3600, 5400.5)] == [
        "0s",
        "250ms",
        "30s",
        "1m30s",
        "5m",
        "1h",
        "1h30m500ms",
    ]
    assert [prom_number(x) for x in (90 * 0.01, 50 * 0.001, 3.0, 1e-05)] == ["0.9", "0.05", "3", "1e-05"]


def test_hit_ratio_rule_with_hysteresis_keep_state_and_tags() -> None:
    rule = Rule(
        name="low-hit",
        metric="hit_ratio",
        op="<",
        threshold=90,
        clear_threshold=92,
        instances=("shop-*", "tag:eu"),
    )
    notes: list[str] = []
    join = "on(cache_instance, job, instance)"
    value = (
        '(cachetop_hit_ratio{cache_instance=~"shop-.*"} or (cachetop_hit_ratio and'
        f' {join} cachetop_instance_info{{tags=~"(.*,)?(eu)(,.*)?"}}))'
    )
    firing = 'ALERTS{alertname="low-hit", alertstate="firing"}'
    assert rule_expr(rule, notes) == (
        f"{value} < 0.9 or ({value} < 0.92 and {join} {firing})"
        f" or (max without(alertname, alertstate) ({firing}) unless {join} {value})"
    )


def test_p99_waits_for_enough_probes_and_no_data_alerting() -> None:
    rule = Rule(name="slow", metric="latency_p99_ms", op=">", threshold=50, no_data="alerting")
    probes = (
        "(cachetop_probe_latency_p99_seconds and on(cache_instance, job, instance)"
        " cachetop_probe_latency_samples >= 100)"
    )
    assert rule_expr(rule, []) == (
        f"{probes} > 0.05 or (cachetop_up unless on(cache_instance, job, instance) {probes})"
    )


def test_status_rule_drops_the_status_label_and_selects_by_name() -> None:
    rule = Rule(name="down", metric="status", op="!=", threshold="up", instances=("db-*",), no_data="ok")
    assert rule_expr(rule, []) == (
        'max without(status) (cachetop_instance_status{status=~"down|auth_failed|loading",'
        ' cache_instance=~"db-.*"} == 1)'
    )


def test_export_labels_for_keep_firing_for_and_what_is_reported() -> None:
    rules = [
        Rule(
            name="low-hit",
            metric="hit_ratio",
            op="<",
            threshold=90,
            for_s=300,
            keep_firing_for_s=60,
            severity="critical",
            channels=("ops", "mail"),
        ),
        Rule(name="busy", metric="ops_per_sec", op=">", threshold=1e4, no_data="ok", channels=("ops",)),
    ]
    exported = export_rules(rules)
    first, second, daemon = exported.groups[0]["rules"]
    assert (first["for"], first["keep_firing_for"]) == ("5m", "1m")
    assert first["labels"] == {
        "severity": "critical",
        "channels": ",ops,mail,",
        "rule": "low-hit",
        "origin": "config",
    }
    assert "for" not in second and second["expr"] == "cachetop_ops_per_second > 10000"
    assert daemon["alert"] == "cachetop_daemon_down" and daemon["labels"]["channels"] == ""
    assert [n.split(":")[0] for n in exported.unexpressed] == ["rule low-hit", "every rule"]


def test_alertmanager_receivers_hold_no_secret() -> None:
    channels = {
        "ops": SlackChannel("ops", webhook_url="https://hooks.slack.com/services/T/B/SECRET-WEBHOOK"),
        "bot": SlackChannel("bot", token="xoxb-SECRET-TOKEN", channel="#ops"),
        "mail": EmailChannel(
            "mail",
            "smtp.example.com",
            "a@example.com",
            ("b@example.com",),
            username="u",
            password="SECRET-PASSWORD",
        ),
        "pager": PluginChannel("pager", "pagerduty", {"token": "SECRET-PLUGIN"}),
    }
    rules = [
        Rule(
            name="low-hit", metric="hit_ratio", op="<", threshold=90, channels=("ops", "bot", "mail", "pager")
        ),
        Rule(
            name="quiet",
            metric="hit_ratio",
            op="<",
            threshold=50,
            channels=("ops",),
            send_resolved=False,
            cooldown_s=600,
        ),
    ]
    config, notes = alertmanager_config(rules, channels, secrets_dir="/s")
    assert "SECRET" not in repr(config)
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == {"cachetop-null", "ops", "bot", "mail", "pager", "ops-no-resolved"}
    assert receivers["ops"]["slack_configs"][0]["api_url_file"] == "/s/ops.slack_url"
    bot = receivers["bot"]["slack_configs"][0]
    assert bot["http_config"]["authorization"]["credentials_file"] == "/s/bot.slack_token"
    assert receivers["mail"]["email_configs"][0]["auth_password_file"] == "/s/mail.smtp_password"
    assert receivers["ops-no-resolved"]["slack_configs"][0]["send_resolved"] is False
    quiet = [r for r in config["route"]["routes"] if r["matchers"] == ['alertname="quiet"']]
    assert quiet == [
        {
            "receiver": "ops-no-resolved",
            "matchers": ['alertname="quiet"'],
            "repeat_interval": "10m",
            "continue": True,
        }
    ]
    assert any("notifier plugin 'pagerduty'" in n for n in notes)


def test_prometheus_url_forms_and_errors_without_the_password() -> None:
    url = PromUrl.parse("prometheus+https://bob:hunter2pass@prom.example:9443/prom/?match=job%3D%22c%22")
    assert (url.base, url.where, url.match, url.username) == (
        "https://prom.example:9443/prom",
        "prom.example:9443",
        'job="c"',
        "bob",
    )
    assert url.selector("cachetop_up", 'x="1"') == 'cachetop_up{job="c",x="1"}'
    assert PromUrl.parse("prometheus://prom").selector("m") == "m"
    assert PromUrl.parse("prometheus://prom").base == "http://prom:9090"
    for bad, says in [
        ("http://prom:9090", "scheme"),
        ("prometheus://", "no host"),
        ("prometheus://p:99999", "port"),
        ("prometheus://p?step=1", "unknown parameter 'step'"),
    ]:
        with pytest.raises(PromError, match=says) as caught:
            PromUrl.parse(bad)
        assert "hunter2" not in str(caught.value)


def series(
    name: str, value: float | None, job: str = "cachetop", at: str = "d0:9150", **labels: str
) -> Series:
    return Series({"cache_instance": name, "job": job, "instance": at, **labels}, value=value)


def test_snapshot_from_readings_first_owner_wins_and_gone_instances_go_down() -> None:
    reading = FleetReading(
        at=1000.0,
        up=[
            series("a", 1, kind="redis", address="10.0.0.1:6379"),
            series("a", 1, at="d1:9150"),
            series("b", 0, at="d1:9150", kind="memcached", daemon_shard="1/2"),
        ],
        status=[
            series("a", 1, status="up"),
            series("a", 1, at="d1:9150", status="down"),
            series("b", 1, at="d1:9150", status="down"),
        ],
        info=[series("a", 1, tags="shop,eu")],
        metrics={
            "hit_ratio": [series("a", 0.875), series("a", 0.1, at="d1:9150")],
            "latency_p99_ms": [series("a", 0.0125)],
        },
        counters={"hits": [series("a", 7.0)]},
        windows=[Series({"job": "cachetop", "instance": "d0:9150"}, 10.0)],
        stamps=[Series({"job": "cachetop", "instance": "d0:9150"}, 999.5)],
    )
    snap = build_snapshot(reading)
    a, b = snap.instances
    assert (a.name, a.status, a.kind, a.address, a.tags) == (
        "a",
        Status.UP,
        "redis",
        "10.0.0.1:6379",
        ("shop", "eu"),
    )
    assert a.metrics == {"hit_ratio": 87.5, "latency_p99_ms": 12.5} and a.counters == {"hits": 7}
    assert a.last_poll == 999.5 and snap.window_s == 10.0
    assert a.facts[LIVE_FACT] == "cachetop --attach http://d0:9150"
    assert (b.status, b.facts["daemon_shard"], b.error) == (
        Status.DOWN,
        "1/2",
        "down (as its daemon d1:9150 reports)",
    )
    later = build_snapshot(FleetReading(at=1100.0, up=[series("b", 1, at="d1:9150")]), snap)
    gone = later.by_name("a")
    assert gone is not None and gone.status == Status.DOWN and gone.metrics == {}
    assert (
        gone.error
        == "no longer in Prometheus: d0:9150 (job cachetop) is not scraped, or no longer watches it"
    )
    forgotten = build_snapshot(FleetReading(at=1800.0, up=[series("b", 1, at="d1:9150")]), later)
    assert [i.name for i in forgotten.instances] == ["b"]  # 800 s after it left: forgotten


def test_history_frames_from_ranges() -> None:
    live = build_snapshot(FleetReading(at=100.0, up=[series("a", 1)]))
    ranged = {
        "hit_ratio": [
            Series(
                {"cache_instance": "a", "job": "cachetop", "instance": "d0:9150"},
                points=((40.0, 0.5), (70.0, None), (100.0, 0.9)),
            )
        ]
    }
    frames = history_frames(live, ranged, {"a": ("cachetop", "d0:9150")})
    assert [(f.time, f.instances[0].metrics) for f in frames] == [(40.0, {"hit_ratio": 50.0})]

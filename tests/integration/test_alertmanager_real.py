"""Issue 19: a rule exported by `cachetop rules export` and loaded into a real Prometheus fires
through a real Alertmanager (configured by the same export) to the Slack stand-in, by webhook and
by bot token, with the secrets only in the files Alertmanager reads; then it resolves."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.cli import main
from cachetop.servers import LocalServer, free_port
from tests.alert_servers import BOT_TOKEN, WEBHOOK_PATH, SlackStandIn
from tests.conftest import wait_until
from tests.prom_fixture import Processes, procs, prom_query, scrape_config  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

CACHE = "shop/cache-1"


def export_config(path: Path, redis: LocalServer, slack: SlackStandIn, state: Path) -> Path:
    path.write_text(
        f"""
[settings]
state_dir = "{state}"

[[instance]]
name = "{CACHE}"
url = "{redis.url}"

[alerts]
instance_down = false

[channel.ops-slack]
type = "slack"
webhook_url = "{slack.webhook_url}"

[channel.ops-bot]
type = "slack"
token = "{BOT_TOKEN}"
channel = "#ops"
base_url = "{slack.api_url}"

[[rule]]
name = "low-hit-ratio"
metric = "hit_ratio"
op = "<"
threshold = 95
clear_threshold = 96
for = "2s"
instances = ["shop/*"]
channels = ["ops-slack", "ops-bot"]
"""
    )
    path.chmod(0o600)
    return path


def slack_texts(slack: SlackStandIn, path: str) -> list[str]:
    return [json.dumps(r.body) for r in slack.delivered if r.path == path]


def test_exported_rule_fires_through_alertmanager_to_slack(
    tmp_path: Path,
    redis: LocalServer,
    slack: SlackStandIn,
    procs: Processes,  # noqa: F811 - the fixture
) -> None:
    config = export_config(tmp_path / "cachetop.toml", redis, slack, tmp_path / "state")
    rules, am = tmp_path / "rules.yml", tmp_path / "alertmanager.yml"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    argv = ["rules", "export", "-c", str(config), "-o", str(rules), "--alertmanager", str(am)]
    assert main([*argv, "--secrets-dir", str(secrets), "--evaluation-interval", "1s"]) == 0
    am_text = am.read_text()
    assert WEBHOOK_PATH not in am_text and BOT_TOKEN not in am_text and WEBHOOK_PATH not in rules.read_text()
    (secrets / "ops-slack.slack_url").write_text(slack.webhook_url)
    (secrets / "ops-bot.slack_token").write_text(BOT_TOKEN)
    # Quicker than the exported 30 s so the resolved notice comes within the test.
    am_port = procs.alertmanager(am_text.replace("group_interval: 30s", "group_interval: 1s"))

    # The daemon polls and exports; it alerts on nothing itself (no rules, no channels).
    daemon_config = tmp_path / "daemon.toml"
    daemon_config.write_text(
        f'[settings]\ninterval = "200ms"\nwindow = "60s"\nprofile = "light"\nstate_dir = "{tmp_path / "d"}"\n'
        f'[[instance]]\nname = "{CACHE}"\nurl = "{redis.url}"\n[alerts]\ninstance_down = false\n'
    )
    metrics_port = free_port()
    procs.daemon(daemon_config, metrics_port)
    alerting = (
        f'alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ["127.0.0.1:{am_port}"]\n'
    )
    prom_yaml = scrape_config([metrics_port], extra=alerting + f'rule_files: ["{rules}"]\n')
    prom = procs.prometheus(prom_yaml)
    ratio = f'cachetop_keyspace_hits_total{{cache_instance="{CACHE}"}}'
    wait_until(lambda: prom_query(prom, ratio), 30, "the daemon's series in Prometheus")

    client = redis_py.Redis(port=redis.port)
    client.set("present", "x")
    pipe = client.pipeline(transaction=False)
    for _ in range(900):
        pipe.get("present")
    for n in range(100):
        pipe.get(f"absent:{n}")
    pipe.execute()  # 90% < 95%: pending, then firing after `for` = 2s

    started = time.monotonic()
    firing = wait_until(
        lambda: [t for t in slack_texts(slack, WEBHOOK_PATH) if "FIRING" in t],
        60,
        "the webhook's FIRING post",
    )
    fired_after = time.monotonic() - started
    assert CACHE in firing[0] and "low-hit-ratio" in firing[0] and "hit_ratio < 95%" in firing[0]
    bot = wait_until(
        lambda: [t for t in slack_texts(slack, "/api/chat.postMessage") if "FIRING" in t],
        30,
        "the bot's post",
    )
    assert '"channel": "#ops"' in bot[0]
    assert fired_after >= 2.0 - 0.5  # `for` held (a scrape interval of slack)
    assert (
        prom_query(prom, 'ALERTS{alertname="low-hit-ratio", alertstate="firing"}')[0]["metric"][
            "cache_instance"
        ]
        == CACHE
    )

    # 9,000 more hits: 9,900 of 10,000 reads (99%) is past the clear threshold (96%): resolved.
    pipe = client.pipeline(transaction=False)
    for _ in range(9000):
        pipe.get("present")
    pipe.execute()
    resolved = wait_until(
        lambda: [t for t in slack_texts(slack, WEBHOOK_PATH) if "RESOLVED" in t], 60, "the RESOLVED post"
    )
    assert CACHE in resolved[0]
    client.close()

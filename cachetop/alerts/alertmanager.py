"""An Alertmanager config for the exported rules: one receiver per `[channel.NAME]`, one route per
(rule, channel) carrying the rule's `cooldown` as `repeat_interval` and its `send_resolved`.

No secret is ever written: a Slack webhook URL, a bot token or an SMTP password is referred to by
a file under `secrets_dir` (Alertmanager's `api_url_file`, `credentials_file`,
`auth_password_file`), which the operator fills from wherever the secret lives:

    printf '%s' "$SLACK_WEBHOOK_URL" > /etc/alertmanager/secrets/ops.slack_url

What Alertmanager cannot deliver (a notifier plugin channel) is reported, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cachetop.alerts.channels import Channel, EmailChannel, PluginChannel, SlackChannel
from cachetop.alerts.presets import INSTANCE_DOWN
from cachetop.alerts.prom_rules import DAEMON_DOWN, alert_name, duration
from cachetop.alerts.rules import Rule

DEFAULT_SECRETS_DIR = "/etc/alertmanager/secrets"
NULL_RECEIVER = "cachetop-null"  # alerts no channel wants end here
GROUP_BY = ["alertname", "cache_instance"]  # one notification per rule and instance, as cachetop sends
GROUP_WAIT = "0s"  # cachetop notifies at once
GROUP_INTERVAL = "30s"  # how soon a resolved notice follows (cachetop's is immediate)


def secret_files(channels: Mapping[str, Channel], secrets_dir: str = DEFAULT_SECRETS_DIR) -> dict[str, str]:
    """File path -> what to put in it, for the operator (the secret's name, never its value)."""
    out = {}
    for name, channel in channels.items():
        if isinstance(channel, SlackChannel):
            if channel.webhook_url:
                out[f"{secrets_dir}/{name}.slack_url"] = f"[channel.{name}] webhook_url"
            else:
                out[f"{secrets_dir}/{name}.slack_token"] = f"[channel.{name}] token"
        elif isinstance(channel, EmailChannel) and channel.password:
            out[f"{secrets_dir}/{name}.smtp_password"] = f"[channel.{name}] password"
    return out


def receiver(name: str, channel: Channel, send_resolved: bool, secrets_dir: str, notes: list[str]) -> dict:
    out: dict[str, Any] = {"name": name}
    if isinstance(channel, SlackChannel):
        slack: dict[str, Any] = {"send_resolved": send_resolved}
        if channel.webhook_url:
            slack["api_url_file"] = f"{secrets_dir}/{channel.name}.slack_url"
        else:
            slack["api_url"] = channel.base_url + "chat.postMessage"
            slack["channel"] = channel.channel
            slack["http_config"] = {
                "authorization": {
                    "type": "Bearer",
                    "credentials_file": f"{secrets_dir}/{channel.name}.slack_token",
                }
            }
            notes.append(
                f"channel {channel.name}: Alertmanager posts each notice on its own; cachetop's threading"
                " of the resolved notice under the firing one (bot token) is not kept"
            )
        slack["title"] = (
            "{{ .CommonLabels.alertname }} {{ .Status | toUpper }} on {{ .CommonLabels.cache_instance }}"
        )
        slack["text"] = (
            "{{ range .Alerts }}{{ .Annotations.summary }} (value {{ .Annotations.value }})\n{{ end }}"
        )
        out["slack_configs"] = [slack]
    elif isinstance(channel, EmailChannel):
        email: dict[str, Any] = {
            "send_resolved": send_resolved,
            "to": ", ".join(channel.to),
            "from": channel.sender,
            "smarthost": f"{channel.host}:{channel.port}",
            "require_tls": channel.tls == "starttls",
        }
        if channel.username:
            email["auth_username"] = channel.username
            email["auth_password_file"] = f"{secrets_dir}/{channel.name}.smtp_password"
        if channel.ca_file:
            email["tls_config"] = {"ca_file": channel.ca_file}
        if channel.tls == "ssl":
            notes.append(
                f"channel {channel.name}: tls = ssl: Alertmanager speaks implicit TLS only on port 465"
                f" (this channel uses {channel.port})"
            )
        out["email_configs"] = [email]
    elif isinstance(channel, PluginChannel):
        notes.append(
            f"channel {channel.name}: notifier plugin {channel.plugin!r} runs inside cachetop only; its"
            " receiver here is empty: give it a webhook_configs entry (or keep `cachetop daemon` alerting)"
        )
    return out


def alertmanager_config(
    rules: Sequence[Rule], channels: Mapping[str, Channel], *, secrets_dir: str = DEFAULT_SECRETS_DIR
) -> tuple[dict[str, Any], list[str]]:
    """(the config, what it cannot express)."""
    notes: list[str] = []
    receivers: dict[str, dict[str, Any]] = {NULL_RECEIVER: {"name": NULL_RECEIVER}}
    routes = []
    for rule in rules:
        for name in rule.channels or ():
            channel = channels.get(name)
            if channel is None:
                continue
            target = name if rule.send_resolved else f"{name}-no-resolved"
            if target not in receivers:
                receivers[target] = receiver(target, channel, rule.send_resolved, secrets_dir, notes)
            routes.append(
                {
                    "receiver": target,
                    "matchers": [f'alertname="{_escape(alert_name(rule))}"'],
                    "repeat_interval": duration(rule.cooldown_s),
                    "continue": True,
                }
            )
        if not rule.channels:
            notes.append(f"rule {rule.name}: no channel, so no route (its alerts end at {NULL_RECEIVER})")
    down = next((r for r in rules if r.name == INSTANCE_DOWN), None)
    for name in (down.channels or ()) if down is not None else ():
        if name in channels:  # routed like instance_down: its receivers exist by now
            target = name if down.send_resolved else f"{name}-no-resolved"  # type: ignore[union-attr]
            matcher = f'alertname="{DAEMON_DOWN}"'
            routes.append(
                {"receiver": target, "matchers": [matcher], "repeat_interval": "1h", "continue": True}
            )
    config = {
        "route": {
            "receiver": NULL_RECEIVER,
            "group_by": GROUP_BY,
            "group_wait": GROUP_WAIT,
            "group_interval": GROUP_INTERVAL,
            "routes": routes,
        },
        "receivers": list(receivers.values()),
    }
    return config, sorted(set(notes), key=notes.index)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')

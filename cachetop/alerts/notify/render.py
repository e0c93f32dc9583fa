"""What a notification says: a subject, plain text, Slack Block Kit and HTML from one payload.

Names and reasons may come from the network (a server's error text), so they pass through
display_key (no control characters, bounded length) and are escaped for Slack mrkdwn / HTML.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cachetop.alerts.rules import format_limit, format_value
from cachetop.util.safe_text import display_key

MAX_ALERTS_SHOWN = 20  # Slack allows 50 blocks; an alert storm becomes "and N more"
SEVERITY_MARK = {"critical": "🔴", "warning": "🟠", "info": "🔵"}


def subject(payload: Mapping[str, Any]) -> str:
    alerts = payload.get("alerts", [])
    if not alerts:
        return display_key(payload.get("title", "cachetop"), 150)
    kinds = {a["kind"] for a in alerts}
    label = "RESOLVED" if kinds == {"resolved"} else "FIRING" if "firing" in kinds else "STILL FIRING"
    label = "FLAPPING" if kinds == {"flapping"} else label
    if len(alerts) == 1:
        a = alerts[0]
        return f"[{label}] {display_key(a['rule'], 60)} on {display_key(a['instance'], 60)}"
    rules = sorted({display_key(a["rule"], 40) for a in alerts})
    return display_key(f"[{label}] {len(alerts)} alerts: {', '.join(rules)}", 150)


def value_text(metric: str, value: float | str | None) -> str:
    """Rounded to the metric's precision (METRICS), with its unit: `0.04 ms`, `90.0%`."""
    return format_value(metric, value)


def duration_text(seconds: float) -> str:
    whole = max(0, round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{u}" for n, u in parts if n][:2]
    return " ".join(shown) or "0s"


def fields(alert: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) pairs, the same in every format."""
    metric = alert["metric"]
    held = "resolved after" if alert["kind"] == "resolved" else "for"
    out = [
        ("Instance", display_key(alert["instance"], 80)),
        ("Metric", metric),
        ("Value", value_text(metric, alert["value"])),
        ("Threshold", f"{alert['op']} {format_limit(metric, alert['threshold'])}"),
        ("Duration", f"{held} {duration_text(alert['active_for_s'])}"),
        ("Severity", alert["severity"]),
    ]
    if alert.get("reason"):
        out.append(("Reason", display_key(alert["reason"], 300)))
    return out


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def plain_text(payload: Mapping[str, Any]) -> str:
    alerts = payload.get("alerts", [])
    if not alerts:
        return display_key(payload.get("text", ""), 2000)
    lines = [subject(payload), ""]
    for alert in alerts[:MAX_ALERTS_SHOWN]:
        lines.append(
            f"{display_key(alert['rule'], 60)} ({alert['kind']}, since {_when(alert['started_at'])})"
        )
        lines.extend(f"  {label}: {text}" for label, text in fields(alert))
        lines.append("")
    if len(alerts) > MAX_ALERTS_SHOWN:
        lines.append(f"… and {len(alerts) - MAX_ALERTS_SHOWN} more")
    return "\n".join(lines).rstrip() + "\n"


def _mrkdwn(text: str) -> str:
    # Slack's own escaping: only &, < and > are special in message text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    alerts = payload.get("alerts", [])
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": subject(payload)[:150]}}
    ]
    if not alerts:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(plain_text(payload))[:3000]}}
        )
        return blocks
    for alert in alerts[:MAX_ALERTS_SHOWN]:
        mark = "✅" if alert["kind"] == "resolved" else SEVERITY_MARK.get(alert["severity"], "")
        title = f"{mark} *{_mrkdwn(display_key(alert['rule'], 60))}* ({alert['kind']})"
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": title},
                "fields": [
                    {"type": "mrkdwn", "text": f"*{label}*\n{_mrkdwn(text)}"[:2000]}
                    for label, text in fields(alert)[:10]
                ],
            }
        )
    if len(alerts) > MAX_ALERTS_SHOWN:
        more = f"… and {len(alerts) - MAX_ALERTS_SHOWN} more"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return blocks


def html_body(payload: Mapping[str, Any]) -> str:
    alerts = payload.get("alerts", [])
    esc = html.escape
    parts = [f"<h2>{esc(subject(payload))}</h2>"]
    if not alerts:
        parts.append(f"<p>{esc(plain_text(payload))}</p>")
    for alert in alerts[:MAX_ALERTS_SHOWN]:
        parts.append(f"<h3>{esc(display_key(alert['rule'], 60))} ({esc(alert['kind'])})</h3>")
        rows = "".join(f"<tr><th align='left'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in fields(alert))
        parts.append(f"<table>{rows}</table>")
    if len(alerts) > MAX_ALERTS_SHOWN:
        parts.append(f"<p>… and {len(alerts) - MAX_ALERTS_SHOWN} more</p>")
    return "<html><body>" + "".join(parts) + "</body></html>"

"""`cachetop rules export -c FILE --format prometheus`: the alert rules for Prometheus and Alertmanager."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from cachetop.alerts.alertmanager import DEFAULT_SECRETS_DIR, alertmanager_config, secret_files
from cachetop.alerts.channels import channels_of
from cachetop.alerts.presets import effective_rules
from cachetop.alerts.prom_rules import export_rules
from cachetop.engine.config import resolve_config
from cachetop.engine.configfile import ConfigError
from cachetop.util.redact import scrub

HELP = "export the alert rules as Prometheus alerting rules (+ an Alertmanager config)"
DESCRIPTION = """\
Write the alert rules a config uses (its [[rule]]s, its [alerts] preset and the built-in
instance_down) as Prometheus alerting rules on the metrics `cachetop daemon` exports, so that
Prometheus and Alertmanager alert on a fleet of daemons. Same metric, threshold, `for` and
`keep_firing_for`; hysteresis (clear_threshold) through the ALERTS series; severity, channels and
the rule's name as labels. With --alertmanager, also an Alertmanager config: a receiver per Slack
or email channel, a route per rule with its cooldown as repeat_interval. No secret is written:
receivers read them from files under --secrets-dir. What cannot be expressed is printed on
stderr and written as comments at the top of the rules file. See docs/scale.md."""
EPILOG = """\
examples:
  cachetop rules export -c cachetop.toml --format prometheus -o cachetop-rules.yml
  cachetop rules export -c cachetop.toml --format prometheus -o rules.yml --alertmanager alertmanager.yml
  promtool check rules cachetop-rules.yml
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("export",), help="export: write the rules in another format")
    parser.add_argument("-c", "--config", metavar="FILE", help="TOML config file (default: the usual search)")
    parser.add_argument(
        "--format", choices=("prometheus",), default="prometheus", help="(default: prometheus)"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="the rules file (default: standard output)")
    parser.add_argument("--alertmanager", metavar="FILE", help="also write an Alertmanager config here")
    parser.add_argument(
        "--secrets-dir",
        metavar="DIR",
        default=DEFAULT_SECRETS_DIR,
        help=f"where the Alertmanager config reads secrets from (default: {DEFAULT_SECRETS_DIR})",
    )
    parser.add_argument("--group", default="cachetop", help="the rule group's name (default: cachetop)")
    parser.add_argument(
        "--evaluation-interval",
        metavar="DURATION",
        help="the group's `interval` (default: Prometheus's global)",
    )


def dump(document: Any, comments: list[str]) -> str:
    head = "".join(f"# {line}\n" for line in comments)
    return head + yaml.safe_dump(document, sort_keys=False, width=10_000, allow_unicode=True)


def run(args: argparse.Namespace) -> int:
    config = resolve_config([], args.config)
    if not config.path:
        raise ConfigError(
            "rules export: no config file found (give -c FILE with [[rule]] tables or [alerts])"
        )
    rules = effective_rules(config)
    exported = export_rules(rules, group=args.group, interval=args.evaluation_interval)
    source = Path(config.path).name
    comments = [f"Prometheus alerting rules from {source}, written by `cachetop rules export`."]
    comments += ["Not expressed exactly (see docs/scale.md):"] + [f"  - {n}" for n in exported.unexpressed]
    text = dump({"groups": exported.groups}, comments)
    notes = list(exported.unexpressed)
    if args.alertmanager:
        channels = channels_of(config)
        am, am_notes = alertmanager_config(rules, channels, secrets_dir=args.secrets_dir)
        files = secret_files(channels, args.secrets_dir)
        am_comments = [
            f"Alertmanager config for the rules from {source}, written by `cachetop rules export`."
        ]
        if files:
            am_comments.append(
                "Secrets are read from files; write each (mode 0600) before starting Alertmanager:"
            )
            am_comments += [f"  {path}: the value of {what}" for path, what in files.items()]
        if am_notes:
            am_comments += ["Not expressed exactly:"] + [f"  - {n}" for n in am_notes]
        _write(args.alertmanager, dump(am, am_comments))
        notes += am_notes
    if args.output:
        _write(args.output, text)
    else:
        sys.stdout.write(scrub(text))
    for note in notes:
        print(f"cachetop rules export: not expressed exactly: {note}", file=sys.stderr)
    return 0


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(scrub(text))  # scrub: a last line of defence; nothing secret is formatted
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write it ({exc.strerror})") from None

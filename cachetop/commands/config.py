"""`cachetop config check FILE`: validate a config file and summarise it."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.text import Text

from cachetop.config import load_config

HELP = "validate a config file (`cachetop config check FILE`)"
DESCRIPTION = "Validate a cachetop TOML file. Each mistake prints FILE:LINE: what is wrong (what is allowed)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate FILE and print a summary")
    check.add_argument("file", metavar="FILE")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    console = Console(highlight=False)
    s = config.settings
    console.print(Text(f"{args.file}: OK", style="bold green"))
    console.print(
        f"settings: interval {s.interval:g}s, window {s.window:g}s, timeout {s.timeout:g}s, "
        f"state_dir {s.state_dir}"
    )
    console.print(f"{len(config.instances)} instance(s):")
    for inst in config.instances:
        line = Text(f"  {inst.name:<20} ")
        line.append(inst.target.redacted_url)
        if inst.tags:
            line.append(f"  tags: {', '.join(inst.tags)}")
        if inst.interval or inst.timeout:
            line.append(f"  interval {config.interval_of(inst):g}s timeout {config.timeout_of(inst):g}s")
        console.print(line)
    if any(k in config.sections for k in ("rule", "channel", "alerts")):
        from cachetop.alerts.channels import channels_of
        from cachetop.alerts.presets import effective_rules

        rules = effective_rules(config)
        console.print(
            f"{len(rules)} alert rule(s) in force: {', '.join(r.name for r in rules)}", markup=False
        )
        console.print(
            f"{len(channels_of(config))} channel(s): {', '.join(channels_of(config))}", markup=False
        )
    return 0

"""`cachetop config check FILE`: validate a config file and summarise it."""

from __future__ import annotations

import argparse
import sys

from rich.text import Text

from cachetop.commands.render_table import Output
from cachetop.engine.config import load_config
from cachetop.util.safe_text import display_key

HELP = "validate a config file (`cachetop config check FILE`)"
DESCRIPTION = "Validate a cachetop TOML file. Each mistake prints FILE:LINE: what is wrong (what is allowed)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate FILE and print a summary")
    check.add_argument("file", metavar="FILE")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    # One line per fact, never broken by a guessed width; plain text (no colour codes) in a pipe.
    console = Output(sys.stdout)
    s = config.settings
    # Names, tags and paths come from the file: each is escaped once (display_key) and printed as
    # Text, never markup, so "[bold]" prints literally and "\x1b" never reaches the terminal raw.
    console.line(Text(f"{display_key(args.file, 200)}: OK", style="bold green"))
    console.line(
        Text(
            f"settings: interval {s.interval:g}s, window {s.window:g}s, timeout {s.timeout:g}s, "
            f"state_dir {display_key(str(s.state_dir), 200)}"
        )
    )
    console.line(Text(f"{len(config.instances)} instance(s):"))
    for inst in config.instances:
        line = Text(f"  {display_key(inst.name, console.name_max):<20} ")
        line.append(display_key(inst.target.redacted_url, 200))
        if inst.tags:
            line.append(f"  tags: {', '.join(display_key(t, 40) for t in inst.tags)}")
        if inst.interval or inst.timeout:
            line.append(f"  interval {config.interval_of(inst):g}s timeout {config.timeout_of(inst):g}s")
        console.line(line)
    if any(k in config.sections for k in ("rule", "channel", "alerts")):
        from cachetop.alerts.channels import channels_of
        from cachetop.alerts.presets import effective_rules

        rules = effective_rules(config)
        names = ", ".join(display_key(r.name, 60) for r in rules)
        console.line(Text(f"{len(rules)} alert rule(s) in force: {names}"))
        channels = ", ".join(display_key(c, 60) for c in channels_of(config))
        console.line(Text(f"{len(channels_of(config))} channel(s): {channels}"))
    if "history" in config.sections or "warm" in config.sections:
        from cachetop.history.config import describe

        for line in describe(config):
            console.line(Text(line))
    return 0

"""`cachetop alerts test CHANNEL` and `cachetop alerts list`."""

from __future__ import annotations

import argparse
import socket
import sys
import time

from rich.text import Text

from cachetop.alerts.channels import channels_of
from cachetop.alerts.notify import Delivered, Permanent
from cachetop.alerts.outbox import Message
from cachetop.alerts.presets import effective_rules
from cachetop.alerts.rules import format_threshold
from cachetop.alerts.service import make_notifier
from cachetop.commands.render_table import Output
from cachetop.engine.config import resolve_config
from cachetop.engine.configfile import ConfigError
from cachetop.plugins import plugin_paths_of
from cachetop.util.redact import scrub
from cachetop.util.safe_text import display_key, escape_controls

HELP = "send a test message to a channel (`alerts test CHANNEL`), or list the rules in force"
DESCRIPTION = """\
test CHANNEL   send one test message to [channel.CHANNEL] now and report what happened
list           print every rule in force: built-in, preset ([alerts] preset) and [[rule]] tables"""
EPILOG = """\
The attempt is bounded by the channel's `timeout` (default 10s), connect and answer together.

exit status: 0 sent (or listed), 1 the channel refused or could not be reached, 2 config error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    test = sub.add_parser("test", help="send a test message to CHANNEL")
    test.add_argument("channel", metavar="CHANNEL")
    test.add_argument("-c", "--config", metavar="FILE", help="TOML config file")
    listing = sub.add_parser("list", help="list the rules in force")
    listing.add_argument("-c", "--config", metavar="FILE", help="TOML config file")


def run(args: argparse.Namespace) -> int:
    config = resolve_config([], args.config)
    if args.action == "list":
        return _list(config)
    channels = channels_of(config)
    if args.channel not in channels:
        known = ", ".join(sorted(channels)) or "none: add a [channel.NAME] table"
        raise ConfigError(
            f"alerts test: no channel {args.channel!r} in {config.path or 'the config'} ({known})"
        )
    now = time.time()
    message = Message(
        id=0,
        channel=args.channel,
        kind="test",
        payload={
            "title": "cachetop test message",
            "text": f"Test message from cachetop on {socket.gethostname()}: channel {args.channel} works.",
        },
        created=now,
        deadline=now,
        state="sending",
        attempts=0,
        next_attempt=now,
        last_error=None,
        finished=None,
        remote_id=None,
        thread_of=None,
    )
    outcome = make_notifier(channels[args.channel], plugin_paths_of(config)).send(message, None)
    if isinstance(outcome, Delivered):
        print(f"sent a test message to {args.channel}")
        if outcome.note:
            print(f"cachetop: {args.channel}: {_shown(outcome.note)}", file=sys.stderr)
        return 0
    kind = "refused (permanent)" if isinstance(outcome, Permanent) else "failed (would be retried)"
    print(f"cachetop: test message to {args.channel} {kind}: {_shown(outcome.error)}", file=sys.stderr)
    return 1


def _shown(error: str, limit: int = 300) -> str:
    """An outcome's text for the terminal: what a server wrote is in it as written (bounded), so
    its control characters are escaped here, once (escape_controls leaves text that something
    already escaped as it is)."""
    text = escape_controls(scrub(error))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _list(config: object) -> int:
    console = Output(sys.stdout)  # plain text (no colour codes) in a pipe
    for rule in effective_rules(config):
        line = Text(f"{display_key(rule.name, 60):<20} ")
        line.append(f"{rule.metric} {rule.op} {format_threshold(rule.threshold)}")
        if rule.clear_threshold is not None:
            line.append(f" (clears at {format_threshold(rule.clear_threshold)})")
        line.append(f"  for {rule.for_s:g}s  cooldown {rule.cooldown_s:g}s  {rule.severity}")
        channels = ", ".join(display_key(c, 60) for c in rule.channels or ())
        line.append(f"  -> {channels or 'no channel'}  [{rule.origin}]")
        console.line(line)
    return 0

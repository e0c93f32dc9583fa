"""`cachetop --attach URL`: the dashboard on a daemon's /api/v1 (sources/attach.py), no polling.

Tokens never come from a plain argument (`ps` shows arguments to every user): the API token from
$CACHETOP_TOKEN or --token-file FILE, the action token (evict through the daemon) from
$CACHETOP_ACTION_TOKEN or --action-token-file FILE. Without an action token the dashboard is
read-only and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from cachetop.engine.config import Config, Settings
from cachetop.engine.configfile import ConfigError

TOKEN_ENV = "CACHETOP_TOKEN"
ACTION_TOKEN_ENV = "CACHETOP_ACTION_TOKEN"
MAX_TOKEN_FILE = 4096


def add_attach_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--attach",
        metavar="URL",
        help="show a `cachetop daemon`'s view instead of polling: http[s]://HOST:PORT (its --metrics-port);"
        f" token from ${TOKEN_ENV} or --token-file (docs/api.md)",
    )
    parser.add_argument("--token-file", metavar="FILE", help=f"the daemon's api_token (else ${TOKEN_ENV})")
    parser.add_argument(
        "--action-token-file",
        metavar="FILE",
        help=f"the daemon's action_token, to evict through it (else ${ACTION_TOKEN_ENV}; none: read-only)",
    )
    parser.add_argument("--ca-file", metavar="PEM", help="CA to trust for an https:// daemon")


def read_token(path: str | None, env: str, flag: str) -> str | None:
    """The token from FILE (first line, stripped) or else from $env; None when neither is set."""
    if path:
        try:
            with open(Path(path).expanduser(), encoding="utf-8") as fh:
                text = fh.read(MAX_TOKEN_FILE)
        except OSError as exc:
            raise ConfigError(f"{flag} {path}: cannot read it ({exc.strerror})") from None
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not token:
            raise ConfigError(f"{flag} {path}: the file is empty (write the token on its first line)")
        from cachetop.util.filemode import warn_if_readable

        warn_if_readable(path, (token,))  # a token file others can read: said once, in the log
        return token
    value = os.environ.get(env, "").strip()
    return value or None


def follow_rules(app: Any, source: Any) -> None:
    """Colours by the daemon's alert rules, as a local dashboard colours by its config's."""
    from cachetop.tui.health import Health

    shown: list[tuple[Any, ...]] = [()]

    def on_snapshot(_snap: Any) -> None:
        if source.rules != shown[0]:
            shown[0] = source.rules
            app.health = Health(source.rules)

    source.subscribe(on_snapshot)


def run_attached(args: argparse.Namespace) -> int:
    from cachetop.sources.attach import AttachSource
    from cachetop.util.redact import register_secret

    if getattr(args, "record", None):
        raise ConfigError(
            "--record with --attach: the daemon records (its --record); replay its file (docs/api.md)"
        )
    if getattr(args, "targets", None) or getattr(args, "source", None):
        raise ConfigError("--attach shows the daemon's fleet: give no TARGET and no --source with it")
    token = read_token(args.token_file, TOKEN_ENV, "--token-file")
    action_token = read_token(args.action_token_file, ACTION_TOKEN_ENV, "--action-token-file")
    for secret in (token, action_token):
        if secret:
            register_secret(secret)
    try:
        source = AttachSource(args.attach, token or "", action_token=action_token, ca_file=args.ca_file)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:  # --ca-file unreadable
        raise ConfigError(f"--ca-file {args.ca_file}: cannot read it ({exc.strerror})") from None
    from cachetop.tui.app import CachetopApp
    from cachetop.tui.run import run_on_source
    from cachetop.util.terminal import screen_on_terminal

    config = Config(path=None, settings=Settings(), instances=())
    read_only = bool(getattr(args, "read_only", False)) or not action_token
    app = CachetopApp(config, theme=getattr(args, "theme", None), read_only=read_only)
    app.alerts = source.alerts
    follow_rules(app, source)
    if not token:
        app.say(f"no token: set ${TOKEN_ENV} or --token-file to the daemon's api_token")
    if not action_token:
        app.say(f"read-only: attached without an action token (${ACTION_TOKEN_ENV} or --action-token-file)")
    with screen_on_terminal():
        return asyncio.run(run_on_source(app, config, source))

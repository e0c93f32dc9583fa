"""`cachetop serve`: the dashboard in a browser, each tab attached to a daemon (textual-serve)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import socket
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cachetop.commands.attach import ACTION_TOKEN_ENV, TOKEN_ENV
from cachetop.commands.attach import read_token as read_attach_token
from cachetop.engine.configfile import ConfigError
from cachetop.util.redact import register_secret
from cachetop.util.safe_text import display_key

if TYPE_CHECKING:
    from cachetop.tui.serve_web import DashboardServer

HELP = "the dashboard in a browser: each tab attaches to a daemon, so tabs add no load on the caches"
DESCRIPTION = """\
Serve the dashboard to web browsers (through textual-serve). Every browser tab runs its own
dashboard process, attached to one `cachetop daemon` (`cachetop --attach URL`): the daemon does
all the polling, so ten tabs on an incident bridge send the caches nothing more than the daemon
does.

The token: from $CACHETOP_TOKEN or --token-file FILE, never a plain argument (`ps` would show it).
It is the daemon's [settings] api_token. Each tab's dashboard gets it through its environment; a
browser gets in by typing it into the sign-in page, which sets a session cookie (the token never
sits in a URL). Tabs are read-only unless --allow-actions hands them the daemon's action token
(then everyone who can sign in can evict through the daemon).

serve listens on 127.0.0.1 by default, over plain HTTP: from another machine, tunnel it
(`ssh -L 9152:127.0.0.1:9152 HOST`, then open http://127.0.0.1:9152/), or put a TLS proxy in front
and pass --public-url. See docs/team.md."""
EPILOG = """\
examples:
  export CACHETOP_TOKEN=...            # the daemon's api_token
  cachetop serve --attach http://cache-mon.internal:9150
  cachetop serve --attach https://cache-mon.internal:9150 --token-file ~/.config/cachetop/token --port 8080

exit status: 0 stopped with Ctrl+C, 2 usage error (no token, port in use, bad URL).
"""

DEFAULT_PORT = 9152
PROBE_TIMEOUT_S = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--attach",
        metavar="URL",
        default=os.environ.get("CACHETOP_ATTACH"),
        help="the daemon every tab attaches to, e.g. http://127.0.0.1:9150 (default: $CACHETOP_ATTACH)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default: {DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for every interface)",
    )
    parser.add_argument(
        "--token-file", metavar="FILE", help="read the API token from FILE (default: $CACHETOP_TOKEN)"
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="the address browsers use when it is not the one they reached (behind a TLS proxy)",
    )
    parser.add_argument(
        "--max-tabs", type=int, default=20, metavar="N", help="refuse more tabs open at once (default: 20)"
    )
    parser.add_argument(
        "--allow-actions",
        action="store_true",
        help="tabs may evict through the daemon, with the action token from $CACHETOP_ACTION_TOKEN or "
        "--action-token-file (default: read-only tabs)",
    )
    parser.add_argument(
        "--action-token-file", metavar="FILE", help="the daemon's action_token (--allow-actions)"
    )
    parser.add_argument("--ca-file", metavar="PEM", help="CA to trust for an https:// daemon")
    parser.add_argument("--theme", choices=("dark", "light"), help="colour theme of the tabs")


def read_token(token_file: str | None) -> str:
    """The API token from --token-file or $CACHETOP_TOKEN, with a message a person can act on."""
    token = read_attach_token(token_file, TOKEN_ENV, "--token-file")
    if not token:
        raise ConfigError(
            f"serve needs the daemon's API token: set ${TOKEN_ENV} or pass --token-file FILE "
            "(never the token itself as an argument: `ps` shows arguments to every user)"
        )
    return token


def tab_environment(args: argparse.Namespace, token: str) -> list[str]:
    """Sets what every tab's dashboard inherits (textual-serve copies os.environ); returns notes.

    The action token reaches the tabs only with --allow-actions: whoever signs in to the page
    could otherwise evict through the daemon with the serving user's token.
    """
    os.environ[TOKEN_ENV] = token
    action_token = None
    if args.allow_actions:
        action_token = read_attach_token(args.action_token_file, ACTION_TOKEN_ENV, "--action-token-file")
        if not action_token:
            raise ConfigError(
                f"--allow-actions: set ${ACTION_TOKEN_ENV} or pass --action-token-file FILE "
                "(the daemon's action_token)"
            )
        register_secret(action_token)
        os.environ[ACTION_TOKEN_ENV] = action_token
        return ["  tabs may evict through the daemon (--allow-actions): everyone who signs in can"]
    os.environ.pop(ACTION_TOKEN_ENV, None)
    return ["  tabs are read-only (--allow-actions lets them act through the daemon)"]


def check_attach_url(url: str | None) -> str:
    if not url:
        raise ConfigError(
            "serve needs a daemon to attach to: --attach URL (or $CACHETOP_ATTACH), e.g. "
            "--attach http://127.0.0.1:9150 for `cachetop daemon --metrics-port 9150` on this machine"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--attach: {display_key(url, 80)!r} is not an http:// or https:// URL of a daemon")
    if parts.password is not None or parts.username is not None:
        raise ConfigError(
            "--attach: the URL holds a user or password; put the token in $CACHETOP_TOKEN or a "
            "--token-file instead (every tab's command line is visible in `ps`)"
        )
    return url


def tab_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs per tab: no secret in it (the token is in the env)."""
    argv = [sys.executable, "-m", "cachetop", "--attach", args.attach]
    if args.ca_file:
        argv += ["--ca-file", os.path.abspath(args.ca_file)]
    if not args.allow_actions:
        argv.append("--read-only")
    if args.theme:
        argv += ["--theme", args.theme]
    return shlex.join(argv)


async def probe_daemon(url: str, token: str, ca_file: str | None) -> str:
    """One GET /api/v1/snapshot before serving: a refused token or an API that is off stops serve
    here (every tab would only show the refusal); a daemon that is down is a note (tabs retry)."""
    import ssl

    from cachetop.sources.http_client import Endpoint, HttpError, request

    endpoint = Endpoint.parse(url)
    context = ssl.create_default_context(cafile=ca_file) if endpoint.scheme == "https" else None
    try:
        response = await request(
            endpoint, "GET", "/api/v1/snapshot", headers={"Authorization": f"Bearer {token}"},
            ssl_context=context, timeout=PROBE_TIMEOUT_S,
        )  # fmt: skip
        try:
            doc = await response.json(PROBE_TIMEOUT_S)
        finally:
            response.close()
    except (HttpError, TimeoutError) as exc:
        return f"  the daemon does not answer now ({display_key(str(exc), 120) or 'timeout'}): tabs retry"
    if response.status != 200:
        error = doc.get("error") if isinstance(doc, dict) else None
        reason = display_key(str(error or "no reason given"), 160)
        if response.status in (401, 403):
            raise ConfigError(
                f"{endpoint.display}: {reason}; serve's token ($CACHETOP_TOKEN or --token-file) must be "
                "the daemon's api_token"
            )
        raise ConfigError(f"{endpoint.display} answered {response.status}: {reason}")
    instances = doc.get("instances") if isinstance(doc, dict) else None
    count = len(instances) if isinstance(instances, list) else 0
    return f"  the daemon answers: {count} instance{'s' if count != 1 else ''}"


def run(args: argparse.Namespace) -> int:
    from cachetop.tui.serve_web import DashboardServer

    url = check_attach_url(args.attach)
    token = read_token(args.token_file)
    register_secret(token)
    if args.max_tabs < 1:
        raise ConfigError(f"--max-tabs: must be 1 or more, not {args.max_tabs}")
    if args.ca_file and not os.path.isfile(args.ca_file):
        raise ConfigError(f"--ca-file {args.ca_file}: no such file")
    notes = [asyncio.run(probe_daemon(url, token, args.ca_file)), *tab_environment(args, token)]
    server = DashboardServer(
        tab_command(args),
        token=token,
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        max_tabs=args.max_tabs,
    )
    return asyncio.run(_serve(server, url, args, notes))


async def _serve(server: DashboardServer, attach_url: str, args: argparse.Namespace, notes: list[str]) -> int:
    try:
        runner, urls = await server.start()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); choose another --port"
        ) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    shown = args.public_url or urls[0]
    if args.host in ("0.0.0.0", "::", ""):  # every interface: a browser needs this machine's name
        shown = f"http://{socket.gethostname()}:{urls[0].rsplit(':', 1)[-1]}"
    lines = [
        f"cachetop serve: open {shown} in a browser and sign in with the API token",
        f"  every tab attaches to {display_key(attach_url, 100)} (no extra load on the caches)",
        *notes,
    ]
    if args.host in ("127.0.0.1", "localhost", "::1"):
        port = urls[0].rsplit(":", 1)[-1].rstrip("/")
        lines.append(
            f"  this machine only; from elsewhere: ssh -L {port}:127.0.0.1:{port} THIS_HOST, then {urls[0]}"
        )
    elif not args.public_url:
        lines.append("  plain HTTP on the network: prefer an SSH tunnel or a TLS proxy (see docs/team.md)")
    lines.append("  Ctrl+C to stop")
    print("\n".join(lines), flush=True)
    try:
        await stop.wait()
    finally:
        await server.close_tabs()
        await runner.cleanup()
    return 0

"""Notification channels: the `[channel.NAME]` tables.

Channel values hold secrets (webhook URLs, bot tokens, SMTP passwords): every dataclass here
keeps them out of repr(), and `alert_secrets` lists them so output can be scrubbed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cachetop.engine.configfile import ConfigContext, DurationBounds, KeyPath
from cachetop.util.redact import register_secret

CHANNEL_TYPES = ("slack", "email", "plugin")
PLUGIN_KEYS = ("type", "plugin", "options")
# Plugin options whose names say they hold a secret: registered for scrubbing like ours.
_SECRET_OPTION_RE = re.compile(r"token|password|passwd|secret|key|url|webhook|auth", re.IGNORECASE)
SLACK_KEYS = ("type", "webhook_url", "token", "channel", "base_url", "timeout")
EMAIL_KEYS = ("type", "host", "port", "tls", "ca_file", "username", "password", "from", "to", "timeout")
TLS_MODES = ("starttls", "ssl", "none")
DEFAULT_SLACK_API = "https://slack.com/api/"
# `timeout` is the total time one delivery attempt may take: connect, TLS, request and answer.
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 60.0
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True, slots=True)
class SlackChannel:
    name: str
    webhook_url: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    channel: str | None = None  # "#ops" or a channel id; with a bot token only
    base_url: str = DEFAULT_SLACK_API  # Web API root; tests point it at a loopback server
    timeout: float = DEFAULT_TIMEOUT_S  # total, per attempt
    type: str = "slack"

    @property
    def secrets(self) -> tuple[str, ...]:
        # A webhook's path is its token on its own: a server (or a redirect) may echo just that.
        path = _url_path(self.webhook_url) if self.webhook_url else None
        return tuple(s for s in (self.webhook_url, path, self.token) if s)

    @property
    def threads(self) -> bool:
        """Only the Web API returns a message ts that a resolved notice can reply to."""
        return self.token is not None


@dataclass(frozen=True, slots=True)
class EmailChannel:
    name: str
    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    tls: str = "starttls"
    ca_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT_S  # total, per attempt
    type: str = "email"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.password,) if self.password else ()

    @property
    def threads(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class PluginChannel:
    """A channel whose sender is a notifier plugin (entry point cachetop.notifiers, or a file in
    plugin_paths); `options` are handed to the plugin's factory as strings."""

    name: str
    plugin: str
    options: Mapping[str, str] = field(default_factory=dict, repr=False)
    type: str = "plugin"

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(v for k, v in self.options.items() if _SECRET_OPTION_RE.search(k) and v)

    @property
    def threads(self) -> bool:
        return False


Channel = SlackChannel | EmailChannel | PluginChannel


def _url_path(url: str) -> str | None:
    """The path and query of a URL, when long enough to be a token rather than "/" or "/hook"."""
    rest = url.split("://", 1)[-1]
    cut = rest.find("/")
    path = rest[cut:] if cut >= 0 else ""
    return path if len(path) >= 12 else None


def parse_channels_section(value: Any, ctx: ConfigContext) -> dict[str, Channel]:
    table = ctx.table(value, ("channel",))
    channels: dict[str, Channel] = {}
    for name, raw in table.items():
        path: KeyPath = ("channel", name)
        if not _NAME_RE.match(name):
            ctx.fail(path, f"channel name {name!r} may hold only letters, digits, '-', '_' and '.'")
        body = ctx.table(raw, path)
        if "type" not in body:
            ctx.fail(path, f"[channel.{name}] has no 'type' (allowed: {', '.join(CHANNEL_TYPES)})")
        kind = ctx.string(body["type"], (*path, "type"), choices=CHANNEL_TYPES)
        parse = {"slack": _slack, "email": _email, "plugin": _plugin}[kind]
        channels[name] = parse(name, body, path, ctx)
        for secret in channels[name].secrets:
            register_secret(secret)
    return channels


def _slack(name: str, body: Mapping[str, Any], path: KeyPath, ctx: ConfigContext) -> SlackChannel:
    ctx.check_keys(body, SLACK_KEYS, path)
    webhook = ctx.string(body["webhook_url"], (*path, "webhook_url")) if "webhook_url" in body else None
    token = ctx.string(body["token"], (*path, "token")) if "token" in body else None
    target = ctx.string(body["channel"], (*path, "channel")) if "channel" in body else None
    if bool(webhook) == bool(token):
        ctx.fail(path, f'[channel.{name}] needs exactly one of webhook_url or token (with channel = "#name")')
    if webhook and not webhook.startswith(("https://", "http://")):
        # Never echo the value: it is the secret.
        ctx.fail(
            (*path, "webhook_url"),
            "webhook_url must be an https:// URL (the value is not shown: it is a secret)",
        )
    if token and not target:
        ctx.fail(path, f'[channel.{name}] uses a bot token, so it needs channel = "#name" (or a channel id)')
    if webhook and target:
        ctx.fail(
            (*path, "channel"), "channel is only used with a bot token; a webhook posts to its own channel"
        )
    base_url = DEFAULT_SLACK_API
    if "base_url" in body:
        base_url = ctx.string(body["base_url"], (*path, "base_url"))
        if not base_url.endswith("/"):
            base_url += "/"
    timeout = _timeout(body, path, ctx)
    return SlackChannel(
        name=name, webhook_url=webhook, token=token, channel=target, base_url=base_url, timeout=timeout
    )


def _plugin(name: str, body: Mapping[str, Any], path: KeyPath, ctx: ConfigContext) -> PluginChannel:
    ctx.check_keys(body, PLUGIN_KEYS, path)
    if "plugin" not in body:
        ctx.fail(
            path, f'[channel.{name}] has type = "plugin" but no plugin = "NAME" (see `cachetop plugins`)'
        )
    plugin = ctx.string(body["plugin"], (*path, "plugin"))
    options: dict[str, str] = {}
    if "options" in body:
        for key, value in ctx.table(body["options"], (*path, "options")).items():
            options[key] = ctx.string(value, (*path, "options", key))
    return PluginChannel(name=name, plugin=plugin, options=options)


def _email(name: str, body: Mapping[str, Any], path: KeyPath, ctx: ConfigContext) -> EmailChannel:
    ctx.check_keys(body, EMAIL_KEYS, path)
    for required in ("host", "from", "to"):
        if required not in body:
            ctx.fail(path, f"[channel.{name}] has no {required!r} (host, from and to are required)")
    host = ctx.string(body["host"], (*path, "host")).strip()
    if not host:
        ctx.fail((*path, "host"), "host must not be empty")
    sender = ctx.string(body["from"], (*path, "from"))
    if not _EMAIL_RE.match(sender):
        ctx.fail((*path, "from"), f"from = {sender!r} is not an email address")
    to = ctx.string_list(body["to"], (*path, "to"))
    if not to:
        ctx.fail((*path, "to"), "to must name at least one address")
    for address in to:
        if not _EMAIL_RE.match(address):
            ctx.fail((*path, "to"), f"{address!r} is not an email address")
    tls = ctx.string(body["tls"], (*path, "tls"), choices=TLS_MODES) if "tls" in body else "starttls"
    default_port = {"starttls": 587, "ssl": 465, "none": 25}[tls]
    port = ctx.integer(body["port"], (*path, "port"), minimum=1) if "port" in body else default_port
    if port > 65535:
        ctx.fail((*path, "port"), f"port must be at most 65535, not {port}")
    ca_file = None
    if body.get("ca_file"):
        ca_file = ctx.string(body["ca_file"], (*path, "ca_file"))
        if not Path(ca_file).expanduser().is_file():
            ctx.fail((*path, "ca_file"), f"ca_file {ca_file!r} is not a readable file (a PEM bundle of CAs)")
        ca_file = str(Path(ca_file).expanduser())
    username = ctx.string(body["username"], (*path, "username")) if body.get("username") else None
    password = ctx.string(body["password"], (*path, "password")) if body.get("password") else None
    if bool(username) != bool(password):
        ctx.fail(path, f"[channel.{name}] needs both username and password, or neither")
    if password and tls == "none":
        ctx.fail((*path, "tls"), 'tls = "none" would send the password in clear text (use starttls or ssl)')
    timeout = _timeout(body, path, ctx)
    return EmailChannel(
        name=name,
        host=host,
        sender=sender,
        to=to,
        port=port,
        tls=tls,
        ca_file=ca_file,
        username=username,
        password=password,
        timeout=timeout,
    )


def _timeout(body: Mapping[str, Any], path: KeyPath, ctx: ConfigContext) -> float:
    """The total time one attempt may take. Capped tighter than other timeouts: a channel's
    attempt holds that channel's queue, and the delivery worker gives up waiting at 2 minutes."""
    if "timeout" not in body:
        return DEFAULT_TIMEOUT_S
    seconds = ctx.duration(body["timeout"], (*path, "timeout"))
    if seconds > MAX_TIMEOUT_S:
        raw = body["timeout"]
        shown = f'"{raw}"' if isinstance(raw, str) else str(raw)
        ctx.fail(
            (*path, "timeout"),
            f"timeout = {shown} is too long for one delivery attempt (connect, TLS, request"
            f" and answer together): allowed {DurationBounds(0.1, MAX_TIMEOUT_S)}",
        )
    return seconds


def channels_of(config: Any) -> dict[str, Channel]:
    return dict(config.sections.get("channel") or {})


def alert_secrets(config: Any) -> tuple[str, ...]:
    """Every secret held by [channel.*] tables, for Config.secrets to scrub output with."""
    found: list[str] = []
    for channel in channels_of(config).values():
        found.extend(channel.secrets)
    return tuple(found)

"""Turning the daemon's [settings] into its /api/v1 (exporters/api.py) and TLS context."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

from cachetop.engine.configfile import ConfigError
from cachetop.engine.source import Source


def api_for(
    config: Any, source: Source, alerts: Any, *, record: str | None, read_only: bool
) -> tuple[Any, ssl.SSLContext | None]:
    """(ApiServer or None, SSLContext or None) from config.settings: the API exists only with an
    api_token, actions only with an action_token as well."""
    settings = getattr(config, "settings", None)
    if settings is None:
        return None, None
    context = tls_context(settings.api_tls_cert, settings.api_tls_key)
    if not settings.api_token:
        return None, context
    from cachetop.exporters.api import ApiServer
    from cachetop.exporters.api_actions import ApiActions

    actions = (
        ApiActions(
            config, settings.action_token, read_only=read_only, backend_of=_backend_of(source), loop=_loop()
        )
        if settings.action_token
        else None
    )
    api = ApiServer(
        settings.api_token,
        alerts=alerts,
        interval=lambda: source.interval,
        actions=actions,
        recording=record,
    )
    return api, context


def _backend_of(source: Source) -> Callable[[str], object | None]:
    """The poller's backend of an instance, where the daemon's evicts report what they send (so
    they do not show as the users' traffic), when the source polls servers itself."""
    from cachetop.engine.monitor import Monitor

    if not isinstance(source, Monitor):
        return lambda _name: None
    return source.backend_of


def _loop() -> asyncio.AbstractEventLoop | None:
    """The loop the pollers run on (outputs are attached from it), whose gate an evict holds."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert or not key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError(
            f"[settings] api_tls_cert/api_tls_key: cannot load {cert} and {key} ({reason}): "
            "give a PEM certificate (chain) and its private key"
        ) from None
    return context

"""Senders: one per channel type. Each `send` blocks (it runs in a worker thread) and returns an
Outcome; retry policy, ordering and persistence belong to the delivery worker, not here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from cachetop.alerts.outbox import Message
from cachetop.util.redact import scrub


@dataclass(frozen=True, slots=True)
class Delivered:
    remote_id: str | None = None  # Slack's ts, so a resolved notice can reply in the thread
    note: str | None = None  # delivered, but not to everyone (recipients an SMTP server refused)


@dataclass(frozen=True, slots=True)
class Retry:
    error: str
    after: float | None = None  # seconds the server asked us to wait (Retry-After)


@dataclass(frozen=True, slots=True)
class Permanent:
    error: str


Outcome = Delivered | Retry | Permanent


class Notifier(Protocol):
    # Slack allows about one message per second per channel; email has no such limit.
    min_interval_s: float

    def send(self, message: Message, thread_id: str | None) -> Outcome: ...


@runtime_checkable
class Abortable(Protocol):
    """A notifier that can end its attempts in flight at once (the daemon is stopping): they
    return Retry, so the message stays in the outbox and is sent on the next start."""

    def abort(self) -> None: ...


def http_outcome(status: int, headers: Mapping[str, str] | None, what: str) -> Outcome:
    """5xx and 429 are worth retrying (429 after Retry-After); any other 4xx never succeeds, and
    neither does a redirect (it is not followed: see redirect_outcome)."""
    if 200 <= status < 300:
        return Delivered()
    if 300 <= status < 400:
        return redirect_outcome(status, headers, what)
    if status == 429:
        return Retry(f"{what}: HTTP 429 rate limited", retry_after(headers))
    if 400 <= status < 500:
        return Permanent(f"{what}: HTTP {status}")
    return Retry(f"{what}: HTTP {status}")


def redirect_outcome(status: int, headers: Mapping[str, str] | None, what: str) -> Permanent:
    """A redirect is final: following it would POST an alert (and its secret URL) wherever the
    server says. Only the scheme, host and port it points to are shown: a path or query may hold
    a secret such as a new webhook token."""
    location = ""
    for key, value in (headers or {}).items():
        if key.lower() == "location":
            location = value
    return Permanent(f"{what}: HTTP {status} redirect to {_origin(location)} (not followed: update the URL)")


def _origin(location: str) -> str:
    try:
        parts = urlsplit(location.strip())
        port = parts.port
    except ValueError:
        return "an invalid Location"
    if not parts.hostname:
        return "a path on the same server" if location.strip() else "nowhere (no Location header)"
    origin = f"{parts.scheme or 'http'}://{parts.hostname}" + (f":{port}" if port else "")
    tail = "/…" if (parts.path not in ("", "/") or parts.query) else ""
    return scrub(origin)[:120] + tail  # escaped where it is shown, like answer_text


def answer_text(body: bytes, limit: int = 100) -> str:
    """A server's answer for an error message: decoded, bounded and scrubbed, but not escaped:
    every place that shows an error (the terminal, the log, the dashboard) escapes it, once."""
    text = scrub(body[: limit * 4].decode("utf-8", errors="replace").strip())
    if not text:
        return "(empty answer)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return None
    return None

"""Senders: one per channel type. Each `send` blocks (it runs in a worker thread) and returns an
Outcome; retry policy, ordering and persistence belong to the delivery worker, not here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from cachetop.alerts.outbox import Message


@dataclass(frozen=True, slots=True)
class Delivered:
    remote_id: str | None = None  # Slack's ts, so a resolved notice can reply in the thread


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


def http_outcome(status: int, headers: Mapping[str, str] | None, what: str) -> Outcome:
    """5xx and 429 are worth retrying (429 after Retry-After); any other 4xx never succeeds."""
    if 200 <= status < 300:
        return Delivered()
    if status == 429:
        return Retry(f"{what}: HTTP 429 rate limited", retry_after(headers))
    if 400 <= status < 500:
        return Permanent(f"{what}: HTTP {status}")
    return Retry(f"{what}: HTTP {status}")


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

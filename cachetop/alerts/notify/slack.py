"""Slack through slack-sdk: WebhookClient for an incoming webhook, WebClient.chat_postMessage for
a bot token (which returns the message ts, so the resolved notice goes into the same thread).

slack-sdk's own retry handlers are switched off: the delivery worker owns retries, so that a
Retry-After wait never blocks a thread and a retry survives a restart.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from cachetop.alerts.channels import SlackChannel
from cachetop.alerts.notify import Delivered, Outcome, Permanent, Retry, http_outcome, retry_after
from cachetop.alerts.notify.render import plain_text, slack_blocks
from cachetop.alerts.outbox import Message

# slack-sdk logs request URLs (a webhook URL is a secret) at debug level and errors at error
# level on a logger of its own; we report outcomes ourselves, scrubbed.
_QUIET = logging.getLogger("cachetop.slack_sdk")
_QUIET.setLevel(logging.CRITICAL + 1)
_QUIET.propagate = False

# chat.postMessage answers HTTP 200 with ok=false; these errors may pass, the rest never will.
_TRANSIENT_API_ERRORS = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}


class SlackNotifier:
    min_interval_s = 1.0

    def __init__(self, channel: SlackChannel) -> None:
        self.channel = channel
        self._webhook: WebhookClient | None = None
        self._web: WebClient | None = None
        if channel.webhook_url:
            self._webhook = WebhookClient(
                channel.webhook_url, timeout=int(max(1, channel.timeout)), retry_handlers=[], logger=_QUIET
            )
        else:
            self._web = WebClient(
                token=channel.token,
                base_url=channel.base_url,
                timeout=int(max(1, channel.timeout)),
                retry_handlers=[],
                logger=_QUIET,
            )

    def send(self, message: Message, thread_id: str | None) -> Outcome:
        text = plain_text(message.payload)[:3000]  # the notification fallback, also what screen readers get
        blocks = slack_blocks(message.payload)
        try:
            if self._webhook is not None:
                resp = self._webhook.send(text=text, blocks=blocks)
                return http_outcome(resp.status_code, resp.headers, "slack webhook")
            assert self._web is not None
            reply = self._web.chat_postMessage(
                channel=self.channel.channel or "", text=text, blocks=blocks, thread_ts=thread_id
            )
            return Delivered(remote_id=str(reply.get("ts") or "") or None)
        except SlackApiError as exc:
            return _api_error(exc)
        except Exception as exc:  # any failure to reach Slack is worth a retry
            return Retry(f"slack: cannot reach the API ({_describe(exc)})")


def _api_error(exc: SlackApiError) -> Outcome:
    resp = exc.response
    status = int(getattr(resp, "status_code", 0) or 0)
    data = resp.data if isinstance(resp.data, dict) else {}
    error = str(data.get("error") or "unknown error")[:100]
    if status != 200:
        outcome = http_outcome(status, resp.headers, "slack chat.postMessage")
        if isinstance(outcome, Permanent):
            return Permanent(f"{outcome.error} ({error})")
        return outcome
    if error in _TRANSIENT_API_ERRORS:
        return Retry(f"slack chat.postMessage: {error}", retry_after(resp.headers))
    return Permanent(f"slack chat.postMessage: {error}")


def _describe(exc: BaseException) -> str:
    """A short cause without the URL: urllib puts the URL into some messages."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        exc = reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__

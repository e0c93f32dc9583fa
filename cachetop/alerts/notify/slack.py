"""Slack: an incoming webhook, or chat.postMessage with a bot token (which returns the message ts,
so the resolved notice goes into the same thread).

Requests go through notify.http rather than slack-sdk's clients: those use urllib, which follows
redirects by itself and whose sockets cannot be shut down from outside, so a peer answering one
byte every few seconds would hold a send (and the daemon's shutdown) for ever. Each attempt has
one total limit, the channel's `timeout`.

What counts as delivered is what Slack says on success, nothing less:
- webhook: a 2xx whose body is `ok`. Slack answers errors such as `invalid_payload`,
  `no_service` or `channel_not_found` as text; one of those with a 200 is a failure too.
- chat.postMessage: a 200 whose JSON says `"ok": true` (errors come as 200 with ok=false).
- a redirect is never followed, and is final.
"""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any

from cachetop.alerts.channels import SlackChannel
from cachetop.alerts.notify import (
    Delivered,
    Outcome,
    Permanent,
    Retry,
    answer_text,
    http_outcome,
    redirect_outcome,
    retry_after,
)
from cachetop.alerts.notify.deadline import AttemptDeadline, Attempts, cut_outcome
from cachetop.alerts.notify.http import HttpAnswer, post_json
from cachetop.alerts.notify.render import plain_text, slack_blocks
from cachetop.alerts.outbox import Message

WEBHOOK = "slack webhook"
POST_MESSAGE = "slack chat.postMessage"

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
        self._attempts = Attempts()

    def abort(self) -> None:
        self._attempts.abort()

    def send(self, message: Message, thread_id: str | None) -> Outcome:
        text = plain_text(message.payload)[:3000]  # the notification fallback, also what screen readers get
        body: dict[str, Any] = {"text": text, "blocks": slack_blocks(message.payload)}
        what = WEBHOOK if self.channel.webhook_url else POST_MESSAGE
        with self._attempts.start(self.channel.timeout) as deadline:
            outcome = self._send(what, body, thread_id, deadline)
            if isinstance(outcome, Delivered):
                return outcome
            return cut_outcome(what, deadline) or outcome

    def _send(
        self, what: str, body: dict[str, Any], thread_id: str | None, deadline: AttemptDeadline
    ) -> Outcome:
        channel = self.channel
        try:
            if channel.webhook_url:
                return webhook_outcome(post_json(channel.webhook_url, body, deadline))
            body["channel"] = channel.channel or ""
            if thread_id:
                body["thread_ts"] = thread_id
            url = channel.base_url + "chat.postMessage"
            auth = {"Authorization": f"Bearer {channel.token}"}
            return post_message_outcome(post_json(url, body, deadline, auth))
        except ValueError:
            # Never the URL itself: it is the secret.
            return Permanent(f"{what}: the URL in the config cannot be used (not shown: it is a secret)")
        except ssl.SSLCertVerificationError as exc:
            # Retrying cannot fix a certificate we do not trust: say so at once.
            return Permanent(f"{what}: the server's certificate is not trusted ({exc.verify_message})")
        except TimeoutError:
            return Retry(f"{what}: no complete answer within {deadline.limit_s:g}s (the channel's timeout)")
        except (OSError, http.client.HTTPException) as exc:
            return Retry(f"{what}: cannot reach the server ({_describe(exc)})")


def webhook_outcome(answer: HttpAnswer) -> Outcome:
    status = answer.status
    if 200 <= status < 300:
        text = answer.body.decode("utf-8", errors="replace").strip()
        if text == "ok":
            return Delivered()
        # Slack answers "ok" when it posts; anything else did not post, and would not next time.
        return Permanent(f"{WEBHOOK}: HTTP {status} without 'ok': {answer_text(answer.body)}")
    outcome = http_outcome(status, answer.headers, WEBHOOK)
    if isinstance(outcome, Permanent) and not 300 <= status < 400 and answer.body.strip():
        return Permanent(f"{outcome.error}: {answer_text(answer.body)}")
    return outcome


def post_message_outcome(answer: HttpAnswer) -> Outcome:
    status = answer.status
    if 300 <= status < 400:
        return redirect_outcome(status, answer.headers, POST_MESSAGE)
    data = _json_object(answer.body)
    error = answer_text(str(data.get("error") or "").encode()) if data.get("error") else None
    if status == 200 and data.get("ok") is True:
        return Delivered(remote_id=str(data.get("ts") or "") or None)
    if status != 200:
        outcome = http_outcome(status, answer.headers, POST_MESSAGE)
        if isinstance(outcome, Permanent) and error:
            return Permanent(f"{outcome.error} ({error})")
        return outcome
    if error is None:
        return Permanent(f"{POST_MESSAGE}: HTTP 200 without ok=true: {answer_text(answer.body)}")
    if error in _TRANSIENT_API_ERRORS:
        return Retry(f"{POST_MESSAGE}: {error}", retry_after(answer.headers))
    return Permanent(f"{POST_MESSAGE}: {error}")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _describe(exc: BaseException) -> str:
    """A short cause, never the URL."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, http.client.RemoteDisconnected):
        return "closed the connection without answering"
    return type(exc).__name__

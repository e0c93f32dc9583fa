"""Email through smtplib: STARTTLS, implicit TLS or (for a local relay) none.

smtplib's starttls() and SMTP_SSL accept any certificate unless given a context, so every
connection gets an explicit, verifying one; ca_file adds a trust anchor to the system's.
The resolved notice refers to the firing one (In-Reply-To), so mail clients thread them.

smtplib has per-operation socket timeouts only; the connections here take their sockets from an
AttemptDeadline, so the channel's `timeout` bounds the whole attempt (connect, greeting,
STARTTLS, login and DATA). A message counts as delivered only when the server answers the DATA
with 250 (smtplib raises otherwise); recipients it refused while taking the rest are reported.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from cachetop.alerts.channels import EmailChannel
from cachetop.alerts.notify import Delivered, Outcome, Permanent, Retry
from cachetop.alerts.notify.deadline import AttemptDeadline, Attempts, cut_outcome
from cachetop.alerts.notify.render import html_body, plain_text, subject
from cachetop.alerts.outbox import Message


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()  # CERT_REQUIRED and hostname checks
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def build_email(channel: EmailChannel, message: Message, in_reply_to: str | None) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = subject(message.payload)
    mail["From"] = channel.sender
    mail["To"] = ", ".join(channel.to)
    mail["Date"] = formatdate(message.created, localtime=False)
    domain = channel.sender.rsplit("@", 1)[-1]
    # Stable per outbox row: a retried send carries the same Message-ID, so servers can dedupe.
    mail["Message-ID"] = f"<cachetop.{int(message.created * 1000)}.{message.id}@{domain}>"
    mail["X-Cachetop-Kind"] = message.kind
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    mail.set_content(plain_text(message.payload))
    mail.add_alternative(html_body(message.payload), subtype="html")
    return mail


class _SMTP(smtplib.SMTP):
    """smtplib.SMTP whose socket comes from the attempt's deadline (STARTTLS wraps that one)."""

    def __init__(self, deadline: AttemptDeadline, host: str, port: int) -> None:
        self._deadline = deadline
        super().__init__(host, port, timeout=deadline.limit_s)

    def _get_socket(self, host: str, port: int, timeout: Any) -> Any:
        return self._deadline.create_connection((host, port))


class _SMTPSSL(smtplib.SMTP_SSL):
    def __init__(self, deadline: AttemptDeadline, host: str, port: int, context: ssl.SSLContext) -> None:
        self._deadline = deadline
        super().__init__(host, port, timeout=deadline.limit_s, context=context)

    def _get_socket(self, host: str, port: int, timeout: Any) -> Any:
        sock = self._deadline.create_connection((host, port))
        return self.context.wrap_socket(sock, server_hostname=self._host)


class EmailNotifier:
    min_interval_s = 0.0

    def __init__(self, channel: EmailChannel) -> None:
        self.channel = channel
        self._attempts = Attempts()

    def abort(self) -> None:
        self._attempts.abort()

    def send(self, message: Message, thread_id: str | None) -> Outcome:
        channel = self.channel
        mail = build_email(channel, message, thread_id)
        try:
            context = tls_context(channel.ca_file)
        except (OSError, ssl.SSLError) as exc:
            return Permanent(f"email: cannot load ca_file ({_describe(exc)})")
        with self._attempts.start(channel.timeout) as deadline:
            outcome = self._send(mail, context, deadline)
            if isinstance(outcome, Delivered):
                return outcome
            # A cut leaves smtplib with an EOF or half a reply line ("2" reads as SMTP code 2).
            return cut_outcome(f"email: {channel.host}:{channel.port}", deadline) or outcome

    def _send(self, mail: EmailMessage, context: ssl.SSLContext, deadline: AttemptDeadline) -> Outcome:
        channel = self.channel
        try:
            if channel.tls == "ssl":
                smtp: smtplib.SMTP = _SMTPSSL(deadline, channel.host, channel.port, context)
            else:
                smtp = _SMTP(deadline, channel.host, channel.port)
            with smtp:
                if channel.tls == "starttls":
                    smtp.ehlo()
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if channel.username and channel.password:
                    smtp.login(channel.username, channel.password)
                refused = smtp.send_message(mail)
        except ssl.SSLCertVerificationError as exc:
            # Retrying cannot fix a certificate we do not trust: say so at once.
            return Permanent(f"email: {channel.host}'s certificate is not trusted ({exc.verify_message})")
        except smtplib.SMTPNotSupportedError:
            return Permanent(
                f'email: {channel.host} does not offer STARTTLS (set tls = "ssl" or fix the server)'
            )
        except smtplib.SMTPAuthenticationError as exc:
            return Permanent(f"email: login refused by {channel.host} ({exc.smtp_code})")
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            if all(code >= 500 for code in codes):
                return Permanent(f"email: every recipient refused (SMTP {', '.join(map(str, codes))})")
            return Retry(f"email: recipients refused for now (SMTP {', '.join(map(str, codes))})")
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                return Permanent(f"email: {channel.host} refused the message (SMTP {exc.smtp_code})")
            return Retry(f"email: {channel.host} deferred the message (SMTP {exc.smtp_code})")
        except (OSError, smtplib.SMTPException) as exc:
            where = f"{channel.host}:{channel.port}"
            if isinstance(exc, TimeoutError):
                return Retry(
                    f"email: {where}: no complete answer within {deadline.limit_s:g}s (the channel's timeout)"
                )
            return Retry(f"email: cannot reach {where} ({_describe(exc)})")
        # `refused` lists recipients the server turned down while taking the rest: retrying would
        # send it twice to those who got it, so it counts as delivered, with a note saying who not.
        return Delivered(remote_id=mail["Message-ID"], note=refused_note(refused))


def refused_note(refused: dict[str, tuple[int, bytes]]) -> str | None:
    if not refused:
        return None
    shown = [f"{address} (SMTP {code})" for address, (code, _text) in sorted(refused.items())[:5]]
    more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
    return f"email: the server refused {', '.join(shown)}{more}; the others got it"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, TimeoutError | smtplib.SMTPServerDisconnected):
        return "timed out" if isinstance(exc, TimeoutError) else "server disconnected"
    return type(exc).__name__

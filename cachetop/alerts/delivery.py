"""The delivery worker: drains the outbox, one asyncio task per channel.

Each channel delivers its messages in order (so a resolved notice never overtakes its firing
notice), at most one every `min_interval_s` (Slack: 1 s), with exponential backoff and jitter
between failed attempts, Retry-After honoured on 429, and a deadline after which it gives up.
Senders block, so they run in a thread; the database is only touched from the event loop.

Stopping is bounded: a send in progress gets STOP_GRACE_S to finish and be recorded, then it is
aborted (its sockets are shut down, see notify.deadline), and its message stays pending in the
outbox for the next start. Sends run in daemon threads, so even a plugin that ignores the abort
cannot keep the process alive; its row stays `sending` and is retried after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cachetop.alerts.notify import Abortable, Delivered, Notifier, Outcome, Permanent, Retry
from cachetop.alerts.outbox import DELIVERED, EXPIRED, FAILED, SKIPPED, Message, Outbox
from cachetop.util.aio import cancel_and_wait

log = logging.getLogger("cachetop.alerts")

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = (
    300.0  # never more than 5 minutes between attempts: no 200 retries in 10 minutes, no hour-long gaps
)
# On stop: how long a send in progress may still finish on its own (a Slack answer takes well
# under a second), then how long an aborted one has to record its outcome. Together they bound
# the daemon's shutdown (documented in docs/alerts.md as "within 5 s").
STOP_GRACE_S = 2.0
ABORT_GRACE_S = 1.0
# Slack and email bound each attempt themselves (the channel's timeout, at most
# channels.MAX_TIMEOUT_S); a plugin may not. A send with no outcome after this long is given up
# on and retried, so a hung plugin cannot wedge its channel; its thread is left to end on its own.
SEND_WAIT_LIMIT_S = 120.0


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    message_id: int
    channel: str
    kind: str
    result: str  # delivered | retry | failed | expired | skipped
    attempts: int
    error: str | None = None
    retry_in_s: float | None = None


def backoff_delay(attempts: int, base_s: float, cap_s: float, rng: Callable[[], float]) -> float:
    """Equal jitter: half the exponential step is fixed, half random, so delays still grow."""
    step = min(cap_s, base_s * 2 ** max(0, attempts - 1))
    return step / 2 + rng() * step / 2


class DeliveryWorker:
    def __init__(
        self,
        outbox: Outbox,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
        on_event: Callable[[DeliveryEvent], None] | None = None,
        send_wait_limit_s: float = SEND_WAIT_LIMIT_S,
    ) -> None:
        self.outbox = outbox
        self.notifiers = dict(notifiers)
        self.clock = clock
        self.rng = rng
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.on_event = on_event
        self.send_wait_limit_s = send_wait_limit_s
        self._wake: dict[str, asyncio.Event] = {}
        self._last_attempt: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        self.outbox.recover()
        for channel in self.notifiers:
            self._wake[channel] = asyncio.Event()
            last = self.outbox.last_delivery(channel)
            if last is not None:
                self._last_attempt[channel] = last
            self._tasks.append(
                asyncio.create_task(self._run_channel(channel), name=f"alerts-deliver-{channel}")
            )

    def wake(self) -> None:
        for event in self._wake.values():
            event.set()

    async def stop(self, grace_s: float = STOP_GRACE_S, abort_grace_s: float = ABORT_GRACE_S) -> None:
        """Lets a send in progress finish and be recorded, so it is not sent again after restart;
        one that takes longer is aborted and stays pending. Returns within about
        grace_s + abort_grace_s, whatever the peer does."""
        self._stopping = True
        self.wake()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=grace_s)
            if pending:
                for notifier in self.notifiers.values():
                    if isinstance(notifier, Abortable):
                        notifier.abort()
                _done, pending = await asyncio.wait(pending, timeout=abort_grace_s)
            await cancel_and_wait(pending)
        self._tasks.clear()

    async def _run_channel(self, channel: str) -> None:
        wake = self._wake[channel]
        min_interval = self.notifiers[channel].min_interval_s
        while not self._stopping:
            wake.clear()
            message = self.outbox.head(channel)
            wait: float | None = None  # None: until woken
            if message is not None:
                now = self.clock()
                ready_at = max(message.next_attempt, self._last_attempt.get(channel, 0.0) + min_interval)
                if now >= ready_at:
                    await self.attempt(message)
                    continue
                wait = ready_at - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=wait)

    async def attempt(self, message: Message) -> DeliveryEvent:
        """One try at the message: the only place a message is sent."""
        channel, now = message.channel, self.clock()
        if now >= message.deadline:
            return self._finish(message, EXPIRED, "the delivery deadline passed", message.attempts)
        thread_id = None
        if message.kind == "resolved":
            message, reason = self._resolvable(message)
            if reason:
                return self._finish(message, SKIPPED, reason, message.attempts)
            if message.thread_of is not None:
                parent = self.outbox.get(message.thread_of)
                if parent is not None and parent.state == DELIVERED:
                    thread_id = parent.remote_id
        self.outbox.mark_sending(message.id)
        self._last_attempt[channel] = now
        attempts = message.attempts + 1
        try:
            outcome: Outcome = await asyncio.wait_for(
                _in_daemon_thread(self.notifiers[channel], message, thread_id), self.send_wait_limit_s
            )
        except TimeoutError:
            limit = self.send_wait_limit_s
            outcome = Retry(
                f"{channel}: the sender gave no outcome within {limit:g}s (retried; it may still end)"
            )
        except Exception as exc:  # a sender bug must not stop delivery for good
            outcome = Retry(f"{channel}: {type(exc).__name__}")
        if isinstance(outcome, Delivered):
            self.outbox.mark_delivered(message.id, outcome.remote_id)
            if outcome.note:  # delivered, but not to everyone: a person should hear about it
                log.warning("message #%d (%s) to %s: %s", message.id, message.kind, channel, outcome.note)
            return self._emit(
                DeliveryEvent(message.id, channel, message.kind, "delivered", attempts, outcome.note)
            )
        if isinstance(outcome, Permanent):
            return self._finish(message, FAILED, outcome.error, attempts)
        delay = outcome.after if outcome.after is not None else self._backoff(attempts)
        now = self.clock()
        next_attempt = min(now + delay, message.deadline)
        if now >= message.deadline:
            return self._finish(message, EXPIRED, f"gave up at the deadline: {outcome.error}", attempts)
        self.outbox.mark_retry(message.id, outcome.error, next_attempt)
        return self._emit(
            DeliveryEvent(
                message.id, channel, message.kind, "retry", attempts, outcome.error, next_attempt - now
            )
        )

    def _resolvable(self, message: Message) -> tuple[Message, str | None]:
        """A resolved notice only goes where its firing notice was delivered."""
        alerts = message.payload.get("alerts", [])
        delivered = self.outbox.delivered_episodes(message.channel, [a["episode"] for a in alerts])
        kept = [a for a in alerts if a["episode"] in delivered]
        if not kept:
            return message, "the firing notice never reached this channel"
        if len(kept) != len(alerts):
            payload = {**message.payload, "alerts": kept}
            self.outbox.narrow_payload(message.id, payload)
            message = self.outbox.get(message.id) or message
        return message, None

    def _backoff(self, attempts: int) -> float:
        return backoff_delay(attempts, self.backoff_base_s, self.backoff_cap_s, self.rng)

    def _finish(self, message: Message, state: str, error: str, attempts: int) -> DeliveryEvent:
        self.outbox.mark_final(message.id, state, error)
        return self._emit(DeliveryEvent(message.id, message.channel, message.kind, state, attempts, error))

    def _emit(self, event: DeliveryEvent) -> DeliveryEvent:
        if self.on_event is not None:
            self.on_event(event)
        return event


async def _in_daemon_thread(notifier: Notifier, message: Message, thread_id: str | None) -> Outcome:
    """notifier.send in a daemon thread: unlike asyncio.to_thread's pool, which the interpreter
    joins at exit, a send that never returns cannot hold the process after it stopped."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Outcome] = loop.create_future()

    def report(outcome: Outcome | None, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(outcome)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result: tuple[Outcome | None, BaseException | None] = (notifier.send(message, thread_id), None)
        except Exception as exc:
            result = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(report, *result)

    threading.Thread(target=run, name=f"alerts-send-{message.channel}", daemon=True).start()
    return await done

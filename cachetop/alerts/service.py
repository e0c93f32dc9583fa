"""AlertService: wires a Source's snapshots (the live Monitor, or any engine/source.py Source)
to the engine, the outbox and the delivery worker.

    async with AlertService(config) as alerts:
        unsubscribe = alerts.attach(source)

Only one cachetop process per state_dir evaluates and delivers alerts (an flock on the directory),
so a dashboard and a daemon side by side never page twice. `state()` is the read API for
screens: active alerts, recent history and delivery problems.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cachetop.alerts.channels import Channel, PluginChannel, SlackChannel, alert_secrets, channels_of
from cachetop.alerts.delivery import BACKOFF_BASE_S, DeliveryEvent, DeliveryWorker
from cachetop.alerts.engine import ActiveAlert, AlertEngine, Notification, State, TickResult, Transition
from cachetop.alerts.notify import Notifier
from cachetop.alerts.outbox import EXPIRED, FAILED, PENDING, Message, Outbox
from cachetop.alerts.presets import alert_settings, effective_rules
from cachetop.alerts.rules import format_value
from cachetop.engine.configfile import ConfigError
from cachetop.engine.source import Source
from cachetop.model import Snapshot
from cachetop.plugins import plugin_paths_of
from cachetop.util.redact import register_secret
from cachetop.util.safe_text import display_key

log = logging.getLogger("cachetop.alerts")

OUTBOX_FILE = "alerts.sqlite3"
LOCK_FILE = "alerts.lock"
HISTORY = 200
ENGINE_STATE_KEY = "engine_state"
PERSIST_RETRY_S = 2.0  # while the state dir refuses writes, how often the outbox tries again


class AlertsLocked(RuntimeError):
    """Another cachetop process already evaluates alerts with this state_dir."""


@dataclass(frozen=True, slots=True)
class DeliveryProblem:
    message_id: int
    channel: str
    kind: str
    state: str  # pending (still retrying) | failed | expired
    attempts: int
    error: str | None
    created: float  # wall clock


@dataclass(frozen=True, slots=True)
class AlertsView:
    """Everything an alerts panel shows; cheap to build once a second."""

    active: tuple[ActiveAlert, ...]  # pending and firing, firing first
    history: tuple[Transition, ...]  # newest first
    problems: tuple[DeliveryProblem, ...]  # newest first
    firing: int
    pending: int
    queued: int  # messages not yet delivered
    # Set while the state dir refuses writes: what is wrong, for a status line.
    storage_problem: str | None = None
    unpersisted: int = 0  # outbox changes held only in memory
    write_errors: int = 0  # writes the state dir refused since start


def make_notifier(channel: Channel, plugin_paths: Sequence[Path] = ()) -> Notifier:
    """The sender for a channel. A plugin that is missing or fails to start is a ConfigError
    naming the channel, so the daemon refuses to start rather than page nobody."""
    if isinstance(channel, PluginChannel):
        from cachetop.plugins import PluginFailed, PluginNotFound, discover

        try:
            notifier = discover(plugin_paths).create_notifier(channel.plugin, channel.options)
        except (PluginNotFound, PluginFailed) as exc:
            raise ConfigError(f"[channel.{channel.name}]: {exc}") from None
        if not hasattr(notifier, "min_interval_s"):
            notifier.min_interval_s = 0.0
        return notifier  # type: ignore[no-any-return]
    if isinstance(channel, SlackChannel):
        from cachetop.alerts.notify.slack import SlackNotifier

        return SlackNotifier(channel)
    from cachetop.alerts.notify.email import EmailNotifier

    return EmailNotifier(channel)


class AlertService:
    def __init__(
        self,
        config: Any,
        *,
        clock: Callable[[], float] = time.monotonic,
        notifiers: Mapping[str, Notifier] | None = None,
        backoff_base_s: float = BACKOFF_BASE_S,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        for secret in alert_secrets(config):
            register_secret(secret)
        self.config = config
        self.settings = alert_settings(config)
        self.rules = effective_rules(config)  # ConfigError for an unknown channel
        self.channels = channels_of(config)
        self.engine = AlertEngine(self.rules, clock=clock)
        self.state_dir = Path(config.settings.state_dir)
        self._notifiers = dict(notifiers) if notifiers is not None else None
        self._backoff_base_s = backoff_base_s
        self._on_event = on_event
        self._history: deque[Transition] = deque(maxlen=HISTORY)
        self._lock: _StateDirLock | None = None
        self.outbox: Outbox | None = None
        self.worker: DeliveryWorker | None = None
        self._persist_due: float | None = None  # monotonic: the next write-back attempt

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        notifiers = self._notifiers
        if notifiers is None:
            # Before the lock and the outbox: a channel that cannot be built leaves nothing held.
            paths = plugin_paths_of(self.config)
            notifiers = {name: make_notifier(ch, paths) for name, ch in self.channels.items()}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _StateDirLock(self.state_dir)
        try:
            self._open(notifiers)
        except BaseException:
            await self.stop()  # nothing half-started is left: no lock, no worker, no database
            raise

    def _open(self, notifiers: Mapping[str, Notifier]) -> None:
        self.outbox = Outbox(self.state_dir / OUTBOX_FILE, report=self._say)
        restored = self.engine.restore_state(self.outbox.get_value(ENGINE_STATE_KEY, []), wall=time.time())
        if restored:
            self._say(f"restored {restored} firing alert(s) from the last run")
        self.worker = DeliveryWorker(
            self.outbox, notifiers, backoff_base_s=self._backoff_base_s, on_event=self._delivery_event
        )
        self.worker.start()
        queued = sum(1 for _ in self.outbox.pending_channels())
        if queued:
            self._say(f"resuming delivery on {queued} channel(s) with queued messages")

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None
        if self.outbox is not None:
            self.outbox.close()
            self.outbox = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    async def __aenter__(self) -> AlertService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def attach(self, source: Source) -> Callable[[], None]:
        """Evaluates every snapshot the source publishes; returns the unsubscribe function."""
        return source.subscribe(self.on_snapshot)

    # --- one tick -------------------------------------------------------------------------------

    def on_snapshot(self, snapshot: Snapshot) -> TickResult:
        result = self.engine.evaluate(snapshot)
        for transition in result.transitions:
            self._history.appendleft(transition)
            self._say(_describe_transition(transition))
        for n in result.notifications:
            if n.kind == "flapping" or (n.reason or "").startswith("stopped flapping"):
                self._say(f"alert {n.rule} on {display_key(n.instance)}: {n.reason}", logging.WARNING)
        if result.notifications and self.outbox is not None:
            self._enqueue(result.notifications)
            if self.worker is not None:
                self.worker.wake()
        if (result.transitions or result.notifications) and self.outbox is not None:
            self.outbox.put_value(ENGINE_STATE_KEY, self.engine.export_state(wall=snapshot.time))
        self._retry_persist()
        return result

    def _retry_persist(self) -> None:
        """While the state dir refuses writes, tries every PERSIST_RETRY_S to write the outbox back."""
        if self.outbox is None or self.outbox.unpersisted_since is None:
            self._persist_due = None
            return
        now = time.monotonic()
        if self._persist_due is None:  # it has just failed: not again in the same tick
            self._persist_due = now + PERSIST_RETRY_S
        elif now >= self._persist_due:
            self._persist_due = now + PERSIST_RETRY_S
            self.outbox.persist()

    def _enqueue(self, notifications: tuple[Notification, ...]) -> None:
        """One message per channel for what fired in this tick; resolved notices grouped by the
        firing message they answer, so each can be posted in that message's thread."""
        assert self.outbox is not None
        firing: dict[str, list[dict[str, Any]]] = {}
        resolved: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
        for n in notifications:
            alert = _alert_payload(n)
            for channel in n.channels:
                if n.kind == "resolved":
                    first = self.outbox.first_message_for(channel, n.episode)
                    if first is None:
                        continue  # this channel was never told it fired
                    resolved.setdefault((channel, first.id), []).append(alert)
                else:
                    firing.setdefault(channel, []).append(alert)
        deadline = self.settings.delivery_deadline
        for channel, alerts in firing.items():
            self.outbox.enqueue(channel, "firing", {"alerts": alerts}, deadline_s=deadline)
        for (channel, parent), alerts in resolved.items():
            self.outbox.enqueue(
                channel, "resolved", {"alerts": alerts}, deadline_s=deadline, thread_of=parent
            )

    # --- read API for screens ---------------------------------------------------------------------

    def state(self, history: int = 50, problems: int = 20) -> AlertsView:
        active = sorted(self.engine.active(), key=lambda a: (a.state != State.FIRING, -a.since))
        found: list[DeliveryProblem] = []
        queued = 0
        if self.outbox is not None:
            counts = self.outbox.counts()
            queued = counts.get(PENDING, 0) + counts.get("sending", 0)
            for m in self.outbox.recent(200, states=(PENDING, FAILED, EXPIRED)):
                if m.state != PENDING or m.last_error:
                    found.append(_problem(m))
        return AlertsView(
            active=tuple(active),
            history=tuple(list(self._history)[:history]),
            problems=tuple(found[:problems]),
            firing=sum(1 for a in active if a.state == State.FIRING),
            pending=sum(1 for a in active if a.state == State.PENDING),
            queued=queued,
            storage_problem=_storage_problem(self.outbox),
            unpersisted=self.outbox.unpersisted if self.outbox is not None else 0,
            write_errors=self.outbox.write_errors if self.outbox is not None else 0,
        )

    # --- events -----------------------------------------------------------------------------------

    def _delivery_event(self, event: DeliveryEvent) -> None:
        what = f"message #{event.message_id} ({event.kind}) to {event.channel}"
        if event.result == "delivered":
            self._say(f"delivered {what} after {event.attempts} attempt(s)")
        elif event.result == "retry":
            self._say(
                f"retrying {what} in {event.retry_in_s:.1f}s (attempt {event.attempts}): {event.error}",
                logging.WARNING,
            )
        elif event.result == "skipped":
            self._say(f"skipped {what}: {event.error}")
        else:
            self._say(
                f"{event.result.upper()} {what} after {event.attempts} attempt(s): {event.error}",
                logging.ERROR,
            )

    def _say(self, line: str, level: int = logging.INFO) -> None:
        log.log(level, line)
        if self._on_event is not None:
            self._on_event(line)


def _alert_payload(n: Notification) -> dict[str, Any]:
    data = dataclasses.asdict(n)
    del data["channels"]
    return data


def _storage_problem(outbox: Outbox | None) -> str | None:
    if outbox is None or outbox.unpersisted_since is None:
        return None
    since = time.strftime("%H:%M:%S", time.localtime(outbox.unpersisted_since))
    return (
        f"alert state not saved since {since} ({display_key(outbox.storage_error or '', 80)}):"
        f" {outbox.unpersisted} change(s) in memory only, retrying"
    )


def _problem(m: Message) -> DeliveryProblem:
    return DeliveryProblem(m.id, m.channel, m.kind, m.state, m.attempts, m.last_error, m.created)


def _describe_transition(t: Transition) -> str:
    line = f"alert {t.rule} on {display_key(t.instance)}: {t.old} -> {t.new}"
    line += f" (value {format_value(t.metric, t.value)}, {t.severity})"
    if t.reason:
        line += f": {display_key(t.reason, 200)}"  # a server's error text: untrusted
    return line


class _StateDirLock:
    """The single-alerter guarantee: an flock on the state directory itself, which cannot be
    deleted or replaced while it holds the outbox. (An flock on the lock file alone was lost when
    someone deleted the file: a second process then locked a new file of the same name.)
    The lock file is kept, also flocked, to name the owner's pid and for older versions."""

    def __init__(self, state_dir: Path) -> None:
        self._fds: list[int] = []
        path = state_dir / LOCK_FILE
        try:
            for target, flags in ((state_dir, os.O_RDONLY | os.O_DIRECTORY), (path, os.O_RDWR | os.O_CREAT)):
                fd = os.open(target, flags, 0o644)
                self._fds.append(fd)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise AlertsLocked(_locked_message(path)) from None
            with contextlib.suppress(OSError):  # only informative: a full disk must not stop alerts
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Closing releases both flocks."""
        while self._fds:
            os.close(self._fds.pop())


def _locked_message(path: Path) -> str:
    try:
        owner = path.read_text().strip()[:20] or "unknown"
    except OSError:  # the lock file was deleted: the directory lock still tells
        owner = "unknown"
    return (
        f"alerts are already handled by another cachetop process (pid {owner}) using {path.parent};"
        " run one alerting process per state_dir, or give this one another [settings] state_dir"
    )

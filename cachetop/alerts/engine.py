"""The alert state machine: snapshots in, state changes and notifications out.

Pure: no I/O and no clock of its own. Durations use the injected monotonic clock; the
snapshot's wall-clock time is only carried into notifications for people to read.

    ok ──breach──▶ pending ──held `for`──▶ firing ──clear (+keep_firing_for)──▶ resolved ──▶ ok
     ▲                │                       │ every `cooldown`: a repeat
     └──── clear ─────┘ (sends nothing)       └ hysteresis: clears only past clear_threshold

`cooldown` is the quiet period of one rule on one instance: repeats come every `cooldown`, and
a rule that starts firing FLAP_FIRINGS times within one `cooldown` is *flapping*: one
"flapping" notice, then nothing (no firing, resolved or repeat notices) until it has held one
state for a whole `cooldown`; then one notice says where it settled (a repeat if firing, a
resolved notice if not).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from cachetop.alerts.rules import Rule
from cachetop.model import InstanceMetrics, Snapshot
from cachetop.util import format as fmt

NotificationKind = Literal["firing", "repeat", "resolved", "flapping"]

# The third firing episode of one rule on one instance within its cooldown makes it flapping:
# two fire/resolve pairs still page as usual (an outage that comes back is news).
FLAP_FIRINGS = 3


class State(StrEnum):
    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


AlertKey = tuple[str, str]  # (rule name, instance name)


@dataclass(frozen=True, slots=True)
class Notification:
    kind: NotificationKind
    rule: str
    instance: str
    metric: str
    op: str
    threshold: float | str
    value: float | str | None  # None: no data
    severity: str
    channels: tuple[str, ...]
    episode: str  # one id per firing episode: links repeats and the resolved notice to the firing one
    started_at: float  # wall clock: when the condition began (pending started)
    active_for_s: float  # how long the condition has held (firing) or held in all (resolved)
    time: float  # wall clock of the evaluation
    reason: str | None = None  # why an instance is down, from the poller

    @property
    def key(self) -> AlertKey:
        return (self.rule, self.instance)


@dataclass(frozen=True, slots=True)
class Transition:
    rule: str
    instance: str
    old: State
    new: State
    value: float | str | None
    time: float  # wall clock
    severity: str
    reason: str | None = None
    metric: str = ""  # the rule's metric: its unit and precision for people (rules.format_value)


@dataclass(frozen=True, slots=True)
class TickResult:
    transitions: tuple[Transition, ...] = ()
    notifications: tuple[Notification, ...] = ()


@dataclass(slots=True)
class _Alert:
    rule: Rule
    instance: str
    state: State = State.OK
    since: float = 0.0  # monotonic: the condition first held
    since_wall: float = 0.0
    fired_wall: float = 0.0
    next_repeat: float = 0.0  # monotonic
    clear_since: float | None = None  # monotonic: the condition stopped holding while firing
    value: float | str | None = None
    reason: str | None = None
    episode: str = ""


@dataclass(slots=True)
class _Flap:
    """A rule on an instance that is flapping: its notices are held back until it settles."""

    rule: Rule
    instance: str
    episode: str  # the flapping notice's episode: the settling notice answers it
    since: float  # monotonic
    last_change: float  # monotonic: the last time it started firing or resolved
    value: float | str | None = None


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """What a screen shows about one pending or firing alert."""

    rule: str
    instance: str
    state: State
    severity: str
    value: float | str | None
    description: str
    since: float  # wall clock
    reason: str | None = None
    metric: str = ""  # the rule's metric: its unit and precision for people (rules.format_value)


@dataclass
class AlertEngine:
    rules: Sequence[Rule]
    clock: Callable[[], float] = time.monotonic
    _alerts: dict[AlertKey, _Alert] = field(default_factory=dict)
    _fired_at: dict[AlertKey, deque[float]] = field(default_factory=dict)  # monotonic, within cooldown
    _flapping: dict[AlertKey, _Flap] = field(default_factory=dict)

    def flapping(self, rule: str, instance: str) -> bool:
        return (rule, instance) in self._flapping

    def state(self, rule: str, instance: str) -> State:
        alert = self._alerts.get((rule, instance))
        return alert.state if alert else State.OK

    def active(self) -> list[ActiveAlert]:
        return [
            ActiveAlert(
                a.rule.name,
                a.instance,
                a.state,
                a.rule.severity,
                a.value,
                a.rule.describe(),
                a.since_wall,
                a.reason,
                a.rule.metric,
            )
            for a in self._alerts.values()
            if a.state in (State.PENDING, State.FIRING)
        ]

    def evaluate(self, snapshot: Snapshot, now: float | None = None) -> TickResult:
        now = self.clock() if now is None else now
        transitions: list[Transition] = []
        notifications: list[Notification] = []
        seen: set[AlertKey] = set()
        for rule in self.rules:
            for inst in snapshot.instances:
                if rule.selects(inst):
                    seen.add((rule.name, inst.name))
                    self._step(rule, inst.name, rule.value_of(inst), _reason(inst), now, snapshot.time,
                               transitions, notifications)  # fmt: skip
        # An instance that left the snapshot (config reload, rename) has no data.
        for key, alert in list(self._alerts.items()):
            if key not in seen:
                self._step(alert.rule, alert.instance, None, "no longer monitored", now, snapshot.time,
                           transitions, notifications)  # fmt: skip
        self._settle_flaps(now, snapshot.time, notifications)
        return TickResult(tuple(transitions), tuple(notifications))

    def _step(
        self,
        rule: Rule,
        instance: str,
        value: float | str | None,
        reason: str | None,
        now: float,
        wall: float,
        transitions: list[Transition],
        notifications: list[Notification],
    ) -> None:
        key = (rule.name, instance)
        alert = self._alerts.get(key)
        old = alert.state if alert else State.OK
        holds = self._holds(rule, old, value)
        if alert is None:
            if not holds:
                return
            alert = self._alerts[key] = _Alert(rule, instance)
        if value is not None or rule.no_data != "keep_state":
            alert.value = value
            alert.reason = reason

        def emit(kind: NotificationKind, note: str | None = None) -> None:
            notifications.append(
                Notification(
                    kind=kind,
                    rule=rule.name,
                    instance=instance,
                    metric=rule.metric,
                    op=rule.op,
                    threshold=rule.threshold,
                    value=alert.value,
                    severity=rule.severity,
                    channels=rule.channels or (),
                    episode=alert.episode,
                    started_at=alert.since_wall,
                    active_for_s=now - alert.since,
                    time=wall,
                    reason="; ".join(r for r in (note, alert.reason) if r) or None,
                )
            )

        flap = self._flapping.get(key)
        new = old
        if old in (State.OK, State.RESOLVED):
            if holds:
                alert.since, alert.since_wall, alert.clear_since = now, wall, None
                new = State.PENDING
            else:
                new = State.OK
        if new == State.PENDING and holds is not None:
            if not holds:
                new = State.OK
            elif now - alert.since >= rule.for_s:
                new = State.FIRING
                alert.fired_wall = wall
                alert.next_repeat = now + rule.cooldown_s
                starts = self._note_firing(rule, key, now)
                if flap is not None:  # still flapping: quiet, and the same episode throughout
                    flap.last_change = now
                    alert.episode = flap.episode
                elif len(starts) >= FLAP_FIRINGS:
                    alert.episode = f"{rule.name}/{instance}/{int(wall * 1000)}"
                    self._flapping[key] = _Flap(rule, instance, alert.episode, now, now)
                    quiet = fmt.duration(rule.cooldown_s)
                    emit(
                        "flapping",
                        f"flapping: fired {len(starts)} times in {fmt.duration(now - starts[0])};"
                        f" no more notices until it holds one state for {quiet}",
                    )
                else:
                    alert.episode = f"{rule.name}/{instance}/{int(wall * 1000)}"
                    emit("firing")
        elif old == State.FIRING:
            if holds is False:
                alert.clear_since = now if alert.clear_since is None else alert.clear_since
                if now - alert.clear_since >= rule.keep_firing_for_s:
                    new = State.RESOLVED
                    if flap is not None:
                        flap.last_change, flap.value = now, alert.value
                    elif rule.send_resolved:
                        emit("resolved")
            else:
                alert.clear_since = None
            if new == State.FIRING and now >= alert.next_repeat:
                if flap is None:
                    emit("repeat")
                elif now - flap.last_change >= rule.cooldown_s:  # settled: firing steadily
                    del self._flapping[key]
                    emit("repeat", f"stopped flapping: firing for {fmt.duration(now - flap.last_change)}")
                # Anchored to the firing time, so slow ticks do not make repeats drift later.
                while alert.next_repeat <= now:
                    alert.next_repeat += rule.cooldown_s
        alert.state = new
        if new != old:
            transitions.append(
                Transition(
                    rule.name, instance, old, new, alert.value, wall, rule.severity, alert.reason, rule.metric
                )
            )
        if new == State.OK:
            del self._alerts[key]

    def _note_firing(self, rule: Rule, key: AlertKey, now: float) -> deque[float]:
        """Records a firing episode's start; returns the starts within the last cooldown."""
        starts = self._fired_at.setdefault(key, deque())
        starts.append(now)
        while starts[0] <= now - rule.cooldown_s:
            starts.popleft()
        return starts

    def _settle_flaps(self, now: float, wall: float, notifications: list[Notification]) -> None:
        """A flapping alert that has stayed clear for a whole cooldown is over: one resolved
        notice (in the flapping notice's thread). Old firing times are forgotten here too."""
        for key, flap in list(self._flapping.items()):
            alert = self._alerts.get(key)
            if alert is not None and alert.state in (State.PENDING, State.FIRING):
                continue
            rule = flap.rule
            if now - flap.last_change < rule.cooldown_s:
                continue
            del self._flapping[key]
            if rule.send_resolved:
                notifications.append(
                    Notification(
                        kind="resolved",
                        rule=rule.name,
                        instance=flap.instance,
                        metric=rule.metric,
                        op=rule.op,
                        threshold=rule.threshold,
                        value=flap.value,
                        severity=rule.severity,
                        channels=rule.channels or (),
                        episode=flap.episode,
                        started_at=wall - (now - flap.since),
                        active_for_s=now - flap.since,
                        time=wall,
                        reason=f"stopped flapping: clear for {fmt.duration(now - flap.last_change)}",
                    )
                )
        cooldowns = {r.name: r.cooldown_s for r in self.rules}
        for key, starts in list(self._fired_at.items()):
            cooldown = cooldowns.get(key[0])
            if key not in self._flapping and (cooldown is None or now - starts[-1] >= cooldown):
                del self._fired_at[key]

    @staticmethod
    def _holds(rule: Rule, state: State, value: float | str | None) -> bool | None:
        """Whether the alert condition holds now; None: no data, and the rule keeps its state."""
        if value is None:
            return {"ok": False, "alerting": True}.get(rule.no_data)
        if state == State.FIRING:
            return rule.still_active(value)
        return rule.breaches(value)

    # --- surviving a restart: firing alerts are kept so their resolved notice is not lost -------

    def export_state(self, wall: float) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            {
                "rule": a.rule.name,
                "instance": a.instance,
                "episode": a.episode,
                "since_wall": a.since_wall,
                "fired_wall": a.fired_wall,
                "next_repeat_wall": wall + (a.next_repeat - now),
                "value": a.value,
                "reason": a.reason,
            }
            for a in self._alerts.values()
            if a.state == State.FIRING
        ]

    def restore_state(self, saved: Iterable[dict[str, Any]], wall: float) -> int:
        """Reinstates firing alerts saved by export_state; rules that no longer exist are dropped."""
        now = self.clock()
        by_name = {r.name: r for r in self.rules}
        count = 0
        for item in saved:
            rule = by_name.get(item["rule"])
            if rule is None:
                continue
            self._alerts[(rule.name, item["instance"])] = _Alert(
                rule=rule,
                instance=item["instance"],
                state=State.FIRING,
                since=now - (wall - item["since_wall"]),
                since_wall=item["since_wall"],
                fired_wall=item["fired_wall"],
                next_repeat=now + (item["next_repeat_wall"] - wall),
                value=item["value"],
                reason=item["reason"],
                episode=item["episode"],
            )
            count += 1
        return count


def _reason(inst: InstanceMetrics) -> str | None:
    return inst.error if inst.error else None

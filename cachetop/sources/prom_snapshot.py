"""Snapshots from what Prometheus holds of the daemons' `/metrics` (pure: query results in).

Every daemon exports each registry metric as `cachetop_<prom_name>` in Prometheus units, labelled
by `cache_instance` (exporters/prometheus.py). Dividing by the metric's `prom_scale` gives back
the daemon's own number: the windowed gauges the daemon computed, not a rate Prometheus
recomputes from counters, so the dashboard on Prometheus shows what the daemon showed at that
scrape.

Which daemon owns an instance is the scrape's `job` and `instance` labels (and the daemon's
shard label, when it has one). Two daemons exporting the same cache_instance (an overlap during
a reshard) show it once: the owner that sorts first, for every metric alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from cachetop.metrics.totals import COUNTERS
from cachetop.model import METRICS, InstanceMetrics, Snapshot, Status
from cachetop.sources.promql import Series

INSTANCE_LABEL = "cache_instance"
OWNER_LABELS = ("job", "instance")
# The daemon's place among sharded daemons (`cachetop daemon --shard I/N`), shown beside its address.
DAEMON_SHARD_LABELS = ("daemon_shard",)
FORGET_AFTER_S = 600.0  # an instance gone from Prometheus is shown as down this long, then dropped
LIVE_FACT = "hotkeys/slowlog"  # the fact naming the daemon to attach to for what needs a live server

Owner = tuple[str, str]  # (job, instance): the scrape target, i.e. the daemon


@dataclass(frozen=True, slots=True)
class FleetReading:
    """One evaluation time's query results, by what they hold."""

    at: float
    up: Sequence[Series]
    status: Sequence[Series] = ()  # cachetop_instance_status == 1
    info: Sequence[Series] = ()  # cachetop_instance_info (tags)
    metrics: Mapping[str, Sequence[Series]] = field(default_factory=dict)  # registry name -> series
    counters: Mapping[str, Sequence[Series]] = field(default_factory=dict)  # COUNTERS name -> series
    windows: Sequence[Series] = ()  # cachetop_window_seconds, per daemon
    stamps: Sequence[Series] = ()  # cachetop_snapshot_timestamp_seconds, per daemon


def owner_of(labels: Mapping[str, str]) -> Owner:
    return (labels.get("job", ""), labels.get("instance", ""))


def daemon_url(owner: Owner) -> str:
    return f"http://{owner[1]}" if owner[1] else ""


def choose_owners(up: Iterable[Series]) -> dict[str, Owner]:
    """cache_instance -> the daemon that speaks for it (the first by job, then address)."""
    owners: dict[str, Owner] = {}
    for series in up:
        name = series.labels.get(INSTANCE_LABEL)
        if name is None:
            continue
        owner = owner_of(series.labels)
        if name not in owners or owner < owners[name]:
            owners[name] = owner
    return owners


def _mine(series: Series, owners: Mapping[str, Owner]) -> str | None:
    """The series' cache_instance when it comes from that instance's chosen daemon."""
    name = series.labels.get(INSTANCE_LABEL)
    if name is None or owners.get(name) != owner_of(series.labels):
        return None
    return name


def build_snapshot(reading: FleetReading, previous: Snapshot | None = None) -> Snapshot:
    owners = choose_owners(reading.up)
    labels: dict[str, Mapping[str, str]] = {}
    for series in reading.up:
        name = _mine(series, owners)
        if name is not None:
            labels[name] = series.labels
    status: dict[str, Status] = {}
    for series in reading.status:
        name = _mine(series, owners)
        if name is not None and series.value == 1:
            status[name] = _status(series.labels.get("status", ""))
    tags: dict[str, tuple[str, ...]] = {}
    for series in reading.info:
        name = _mine(series, owners)
        if name is not None:
            tags[name] = tuple(t for t in series.labels.get("tags", "").split(",") if t)
    values: dict[str, dict[str, float | int | None]] = {name: {} for name in owners}
    for metric, found in reading.metrics.items():
        info = METRICS.get(metric)
        scale = info.prom_scale if info is not None and info.prom_scale else 1.0
        for series in found:
            name = _mine(series, owners)
            if name is not None and series.value is not None:
                values[name][metric] = series.value / scale
    counters: dict[str, dict[str, int]] = {name: {} for name in owners}
    for counter, found in reading.counters.items():
        for series in found:
            name = _mine(series, owners)
            if name is not None and series.value is not None:
                counters[name][counter] = int(series.value)
    polled = {owner_of(s.labels): s.value for s in reading.stamps if s.value is not None}
    windows = [s.value for s in reading.windows if s.value is not None]
    instances = []
    for name in sorted(owners):
        owner, lab = owners[name], labels[name]
        state = status.get(name)
        if state is None:  # an exporter without instance_status: cachetop_up says it
            up_series = next(s for s in reading.up if _mine(s, owners) == name)
            state = Status.UP if up_series.value == 1 else Status.DOWN
        instances.append(
            InstanceMetrics(
                name=name,
                kind=lab.get("kind", ""),
                address=lab.get("address", ""),
                status=state,
                error=None if state is Status.UP else f"{state} (as its daemon {owner[1]} reports)",
                metrics=values[name],
                tags=tags.get(name, ()),
                facts=owner_facts(owner, lab),
                last_poll=polled.get(owner),
                role=lab.get("role") or None,
                shard=lab.get("shard") or None,
                counters=counters[name],
            )
        )
    instances.extend(_gone(previous, owners, reading.at))
    instances.sort(key=lambda i: i.name)
    window = max(windows) if windows else (previous.window_s if previous is not None else 0.0)
    return Snapshot(time=reading.at, window_s=window, instances=tuple(instances))


def owner_facts(owner: Owner, labels: Mapping[str, str]) -> dict[str, str]:
    """What the detail view's facts table says about where the numbers come from, and where to
    go for what Prometheus does not hold (hot keys, slowlog, clients, actions)."""
    facts = {"source": "prometheus", "daemon": f"{owner[1]} (job {owner[0]})"}
    for key in DAEMON_SHARD_LABELS:
        if labels.get(key):
            facts["daemon_shard"] = labels[key]
    if owner[1]:  # the detail view's Server tab: where hot keys, slowlog, clients, actions are
        facts[LIVE_FACT] = f"cachetop --attach {daemon_url(owner)}"
    return facts


def _gone(previous: Snapshot | None, present: Mapping[str, Owner], at: float) -> list[InstanceMetrics]:
    """Instances Prometheus held last time and no longer does: down for FORGET_AFTER_S, with why."""
    if previous is None:
        return []
    out = []
    for inst in previous.instances:
        if inst.name in present:
            continue
        since = float(inst.facts.get("missing_since", previous.time))
        if at - since > FORGET_AFTER_S:
            continue
        daemon = inst.facts.get("daemon", "its daemon")
        facts = {**inst.facts, "missing_since": f"{since:.3f}"}
        error = f"no longer in Prometheus: {daemon} is not scraped, or no longer watches it"
        out.append(replace(inst, status=Status.DOWN, error=error, metrics={}, facts=facts, stale=False))
    return out


def _status(text: str) -> Status:
    try:
        return Status(text)
    except ValueError:
        return Status.UNKNOWN


def history_frames(
    live: Snapshot, charted: Mapping[str, Sequence[Series]], owners: Mapping[str, Owner]
) -> list[Snapshot]:
    """Past Snapshots from query_range results of the charted metrics, for the detail charts:
    one per step, each instance as the live snapshot labels it, with the values it had then."""
    by_time: dict[float, dict[str, dict[str, float | int | None]]] = {}
    for metric, found in charted.items():
        info = METRICS.get(metric)
        scale = info.prom_scale if info is not None and info.prom_scale else 1.0
        for series in found:
            name = _mine(series, owners)
            if name is None:
                continue
            for when, value in series.points:
                if value is not None and when < live.time:
                    by_time.setdefault(when, {}).setdefault(name, {})[metric] = value / scale
    base = {i.name: i for i in live.instances}
    frames = []
    for when in sorted(by_time):
        rows = by_time[when]
        instances = tuple(
            replace(base[name], status=Status.UP, error=None, metrics=rows[name], stale=False)
            for name in sorted(rows)
            if name in base
        )
        frames.append(Snapshot(time=when, window_s=live.window_s, instances=instances))
    return frames


def counter_names() -> tuple[str, ...]:
    return tuple(c.name for c in COUNTERS)

"""Running totals of the server's counters, for Prometheus counters that `rate()` can read.

A server's own counters go back to 0 when it restarts (or on CONFIG RESETSTAT), and include
cachetop's own polls. Prometheus expects a counter to only ever go up, so each instance keeps
totals of the deltas between consecutive polls, without cachetop's own share: the same numbers
the dashboard's rates are made of. They start at 0 when cachetop first reads the instance.

    restart (new epoch, or a counter went down): the counts since the restart are added
    another server (a failover: new epoch, uptime longer than the gap): nothing is added
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cachetop.model import Sample


@dataclass(frozen=True, slots=True)
class CounterInfo:
    name: str  # the Sample counter
    own: str | None  # cachetop's own share of it, subtracted
    prom_name: str  # without the cachetop_ prefix and without _total
    help: str


COUNTERS: tuple[CounterInfo, ...] = (
    CounterInfo(
        "hits",
        "own_hits",
        "keyspace_hits",
        "Reads that found their key (Redis keyspace_hits, memcached get_hits), without cachetop's own.",
    ),
    CounterInfo(
        "misses",
        "own_misses",
        "keyspace_misses",
        "Reads that did not find their key (Redis keyspace_misses, memcached get_misses),"
        " without cachetop's own.",
    ),
    CounterInfo(
        "commands",
        "own_commands",
        "commands",
        "Commands the server processed, without cachetop's own polls and probes (what ops/s counts).",
    ),
    CounterInfo(
        "errors",
        "own_errors",
        "errors",
        "Error replies and rejected connections, without cachetop's own.",
    ),
    CounterInfo("evictions", None, "evicted_keys", "Keys evicted to free memory."),
    CounterInfo("expired", None, "expired_keys", "Keys removed because their TTL passed."),
)
COUNTERS_HELP_SUFFIX = (
    " Counted by cachetop since it started watching the instance; never goes down (a server restart"
    " adds the counts since the restart)."
)


class RunningTotals:
    """Per-instance totals of COUNTERS, fed every successful poll's Sample."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self._last: Sample | None = None

    def add(self, sample: Sample) -> None:
        last, self._last = self._last, sample
        if last is None:
            self.totals.update({c.name: 0 for c in COUNTERS if c.name in sample.counters})
            return
        went_down = any(k in last.counters and v < last.counters[k] for k, v in sample.counters.items())
        restarted = went_down or sample.epoch != last.epoch
        if sample.epoch != last.epoch and not _fresh(sample, sample.time - last.time):
            # A different server behind the same name (a Sentinel failover): its counters are
            # its whole life, not what happened since our last poll. Start again from here.
            return
        for counter in COUNTERS:
            new = sample.counters.get(counter.name)
            if new is None:
                continue
            old = 0 if restarted else last.counters.get(counter.name, new)
            ours = 0
            if counter.own is not None:
                ours = max(0, sample.counters.get(counter.own, 0) - last.counters.get(counter.own, 0))
            self.totals[counter.name] = self.totals.get(counter.name, 0) + max(0, new - old - ours)

    def values(self) -> Mapping[str, int]:
        return dict(self.totals)


def _fresh(sample: Sample, gap_s: float) -> bool:
    """True when the server started within the gap since the last poll (a restart), from the
    uptime it reports; without an uptime, assume a restart."""
    try:
        uptime = float(sample.facts.get("uptime_s", ""))
    except ValueError:
        return True
    return uptime <= gap_s + 1.0

"""What a hot-key collector publishes: immutable, display-ready, safe to hand to any subscriber.

Every key is kept as the raw bytes (for actions like evict) and as `display`, already escaped and
truncated by safe_text.display_key: show `display` (as rich Text, never markup), never `key`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cachetop.util.safe_text import display_key

JSON_KEY_MAX = 1024  # escaped keys in JSON are cut here: a megabyte key must not make a megabyte line
EMPTY_KEY = '""'  # how the empty key (`GET ""`) is shown: an empty cell would look like no key at all


def show_key(raw: bytes, max_len: int = 80) -> str:
    """`display` for a key: display_key, and `""` for the empty key (JSON keeps "", which is clear)."""
    return display_key(raw, max_len) if raw else EMPTY_KEY


@dataclass(frozen=True, slots=True)
class HotKey:
    key: bytes
    display: str
    count: int  # events in the window (for server-side sources: the server's metric, see unit)
    ops_per_sec: float | None
    share: float | None  # 0..1 of the instance's sampled traffic (or of the server's metric total)
    reads: int = 0
    writes: int = 0
    hits: int | None = None  # None: the source cannot tell (MONITOR sees no replies)
    misses: int | None = None
    error: int = 0  # the count may be this much too high (Space-Saving bound)
    hot: bool = False  # passes both thresholds (min_share and min_ops), with hysteresis (HotLatch)
    history: tuple[float, ...] = ()  # ops/s of recent sampled slots, oldest first: the sparkline

    @property
    def guaranteed(self) -> int:
        """The count this key certainly reached: Space-Saving overestimates by at most `error`."""
        return max(0, self.count - self.error)

    @property
    def guaranteed_fraction(self) -> float:
        """guaranteed / count: scales ops/s and share down to what is certain."""
        return self.guaranteed / self.count if self.count > 0 else 0.0

    @property
    def count_text(self) -> str:
        """`18 (±15)` when the count may be too high, `3` when exact."""
        return f"{self.count:,} (±{self.error:,})" if self.error else f"{self.count:,}"


# Hysteresis: a key turns hot at min_share and min_ops, and stops only after OFF_AFTER refreshes
# in a row below OFF_RATIO of either threshold (or out of the top list), so a key that sits
# near the line does not make the badge blink on and off every refresh.
OFF_RATIO = 0.7
OFF_AFTER = 3


class HotLatch:
    """Which keys are hot, with hysteresis. Fed once per refresh with each listed key's
    guaranteed share (percent) and ops/s (counts less their Space-Saving error, so an
    overestimated key never turns hot on its error alone)."""

    def __init__(
        self, min_share: float, min_ops: float, off_ratio: float = OFF_RATIO, off_after: int = OFF_AFTER
    ) -> None:
        self.min_share = min_share
        self.min_ops = min_ops
        self.off_ratio = off_ratio
        self.off_after = off_after
        self._below: dict[bytes, int] = {}  # hot key -> refreshes in a row below the off line
        self._last: float | None = None

    def update(self, now: float, keys: Iterable[tuple[bytes, float | None, float | None]]) -> set[bytes]:
        """keys: (key, share %, ops/s). Returns the hot keys. Calls with the same `now` (a second
        reader of the same refresh) do not count as another refresh."""
        fresh = now != self._last
        self._last = now
        seen: set[bytes] = set()
        for key, share, ops in keys:
            seen.add(key)
            share, ops = share or 0.0, ops or 0.0
            if share >= self.min_share and ops >= self.min_ops:
                self._below[key] = 0
            elif key in self._below and fresh:
                above_off = share >= self.min_share * self.off_ratio and ops >= self.min_ops * self.off_ratio
                self._below[key] = 0 if above_off else self._below[key] + 1
        if fresh:
            for key in self._below.keys() - seen:
                self._below[key] += 1
        for key in [k for k, n in self._below.items() if n >= self.off_after]:
            del self._below[key]
        return set(self._below)


@dataclass(frozen=True, slots=True)
class PrefixStat:
    pattern: bytes
    display: str
    count: int
    ops_per_sec: float | None
    share: float | None
    hot: bool = False


@dataclass(frozen=True, slots=True)
class BigKey:
    key: bytes
    display: str
    bytes: int


@dataclass(frozen=True, slots=True)
class StampedeEvent:
    key: bytes
    display: str
    time: float  # unix seconds
    writers: int
    readers: int


@dataclass(frozen=True, slots=True)
class HotKeysView:
    name: str
    source: str  # "monitor" | "watch" | "hotkeys" | "lfu" | "off" | "none"
    unit: str  # what `count` counts: "ops" | "cpu_us" | "net_bytes" | "qps" | "lfu_freq"
    status: str  # "starting" | "sampling" | "waiting" | "paused" | "error" | "off"
    detail: str = ""  # one human line: duty cycle, why paused, what to change
    error: str | None = None
    keys: tuple[HotKey, ...] = ()
    prefixes: tuple[PrefixStat, ...] = ()
    big_keys: tuple[BigKey, ...] = ()
    stampedes: tuple[StampedeEvent, ...] = ()
    stampede_events: int = 0  # stampedes in the window: the `stampede_events` metric
    drop_rate: float | None = None  # memcached watch: share of lines the server dropped
    total_events: int = 0  # events the source saw in the window
    sampled_s: float = 0.0  # seconds of the window the source actually listened
    window_s: float = 0.0
    max_omem: int | None = None  # MONITOR: the largest output buffer the watchdog saw
    keysizes: dict[str, str] = field(default_factory=dict)
    min_share: float | None = None  # the hot thresholds, for "no hot keys (none at ...)"
    min_ops: float | None = None

    @property
    def hot_count(self) -> int:
        """For the overview badge: keys over both thresholds, plus hot prefixes with no hot key."""
        return sum(1 for k in self.keys if k.hot)

    def to_json(self) -> dict[str, Any]:
        """The `cachetop hotkeys --json` shape of one instance, keys sorted by count."""
        keys = sorted(self.keys, key=lambda k: k.count, reverse=True)
        return {
            "name": self.name,
            "source": self.source,
            "unit": self.unit,
            "status": self.status,
            "error": self.error,
            "sampled_s": round(self.sampled_s, 3),
            "total_events": self.total_events,
            "drop_rate": None if self.drop_rate is None else round(self.drop_rate, 4),
            "keys": [
                {
                    "key": display_key(k.key, JSON_KEY_MAX),
                    "count": k.count,
                    "count_error": k.error,  # Space-Saving: the true count is count - error .. count
                    "ops_per_sec": None if k.ops_per_sec is None else round(k.ops_per_sec, 2),
                    "share": None if k.share is None else round(k.share, 4),
                    "reads": k.reads,
                    "writes": k.writes,
                    "hits": k.hits,
                    "misses": k.misses,
                    "hot": k.hot,
                }
                for k in keys
            ],
            "prefixes": [
                {"prefix": display_key(p.pattern, JSON_KEY_MAX), "count": p.count, "share": p.share}
                for p in self.prefixes
            ],
            "big_keys": [{"key": display_key(b.key, JSON_KEY_MAX), "bytes": b.bytes} for b in self.big_keys],
            "stampedes": [
                {"key": display_key(s.key, JSON_KEY_MAX), "time": round(s.time, 3), "writers": s.writers}
                for s in self.stampedes
            ],
        }

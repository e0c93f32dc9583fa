"""One instance's keyspace report, and its JSON (one element of `cachetop keyspace --json`'s
"instances"). Key names are escaped as `hotkeys --json` escapes them (safe_text.display_key)."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cachetop.analysis.keyspace.cliffs import Cliff, cliff_json
from cachetop.analysis.keyspace.estimate import KeyFacts, PrefixEstimate, idle_totals
from cachetop.util.safe_text import display_key

JSON_KEY_MAX = 1024  # as hotkeys: a megabyte key must not make a megabyte line
BIG_KEYS = 10


def jkey(raw: bytes) -> str:
    return display_key(raw, JSON_KEY_MAX) if raw else '""'


@dataclass(frozen=True, slots=True)
class KeyspaceProgress:
    """Where a running analysis is: for a progress bar or the Keyspace tab."""

    keys_scanned: int
    keys_total_hint: int | None  # DBSIZE (or the item count) when known
    keys_sampled: int
    phase: str  # "connecting" | "scanning" | "sampling" | "values" | "metadump" | "done"
    elapsed_s: float
    keys_to_sample: int = 0


@dataclass
class InstanceReport:
    name: str
    kind: str
    source: str  # "scan" | "metadump"
    keys_total: int | None  # DBSIZE / items at the start
    keys_scanned: int
    keys_sampled: int
    complete: bool  # every name was counted
    started_at: float
    elapsed_s: float
    prefixes: list[PrefixEstimate] = field(default_factory=list)
    cliffs: list[Cliff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # how values were read, what was skipped
    idle_source: str | None = None  # "idletime" | "freq" | "last_access" | None
    error: str | None = None
    own_commands: int = 0

    def big_keys(self) -> list[KeyFacts]:
        return heapq.nlargest(BIG_KEYS, (f for p in self.prefixes for f in p.biggest), key=lambda f: f.bytes)

    def to_json(self) -> dict[str, Any]:
        prefixes = sorted(self.prefixes, key=lambda p: -p.bytes.est)
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "keys_total": self.keys_total,
            "keys_scanned": self.keys_scanned,
            "keys_sampled": self.keys_sampled,
            "complete": self.complete,
            "started_at": round(self.started_at, 3),
            "elapsed_s": round(self.elapsed_s, 3),
            "own_commands": self.own_commands,
            "idle_source": self.idle_source,
            "error": self.error,
            "notes": list(self.notes),
            "values": self.values,
            "prefixes": [prefix_json(p) for p in prefixes],
            "cliffs": [cliff_json(c, jkey) for c in self.cliffs],
            "idle": idle_totals(self.prefixes),
            "big_keys": [{"key": jkey(f.key), "bytes": f.bytes, "type": f.type} for f in self.big_keys()],
        }


def _num(x: float, exact: bool) -> float | int:
    return round(x) if exact or x >= 100 else round(x, 1)


def _hist(h: dict[str, float] | None) -> dict[str, float] | None:
    return None if h is None else {k: round(v, 1) for k, v in h.items()}


def prefix_json(p: PrefixEstimate) -> dict[str, Any]:
    return {
        "prefix": jkey(p.prefix),
        "keys_est": _num(p.keys.est, p.keys.half == 0),
        "keys_ci95": p.keys.to_json(),
        "bytes_est": _num(p.bytes.est, p.exact),
        "bytes_ci95": p.bytes.to_json(),
        "exact": p.exact,
        "sampled": p.sampled,
        "mean_bytes": round(p.mean_bytes, 1),
        "max_bytes": p.max_bytes,
        "ttl": _hist(p.ttl),
        "idle": _hist(p.idle),
        "freq": _hist(p.freq),
        "encodings": _hist(p.encodings),
        "types": _hist(p.types),
        "biggest": [{"key": jkey(f.key), "bytes": f.bytes, "type": f.type} for f in p.biggest],
        "compress": p.compress,
    }


def summary_line(report: InstanceReport) -> str:
    """How much was looked at and how long it took, in words."""
    names = f"{report.keys_scanned:,} names counted"
    if report.keys_total is not None and not report.complete:
        names += f" of {report.keys_total:,} (stopped early: counts are estimates)"
    return f"{names}, {report.keys_sampled:,} keys sampled, in {report.elapsed_s:.1f} s"


def sorted_prefixes(prefixes: Sequence[PrefixEstimate]) -> list[PrefixEstimate]:
    return sorted(prefixes, key=lambda p: -p.bytes.est)

"""Which daemon polls which target: `--shard I/N` by rendezvous (highest random weight) hashing.

Every daemon of a fleet reads the same inventory; daemon I of N polls the targets it owns. A
target's owner is the shard with the highest score blake2b-64(f"{shard}\\0{name}"): a pure
function of the instance name and N, so every daemon agrees without talking to the others.

Why rendezvous hashing rather than `hash % N` or a ring: going from N to N+1 shards moves only
the targets the new shard wins (about 1/(N+1) of them; `% N` moves about N/(N+1)), it needs no
virtual nodes to spread evenly (a ring with few shards is lumpy unless each shard holds hundreds
of points), and it is a dozen lines. Its cost, N hashes per target, is nothing at the tens of
shards a fleet runs. Shards are numbered, so grow by adding shard N (the highest index) and
restarting the others with the new N: only the new shard's share moves.

The unit is the configured target, never a discovered node: a redis-cluster:// target's nodes
and a sentinel target's master are polled by the daemon that owns the target.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

MAX_SHARDS = 4096  # more daemons than this is a typo, not a fleet
_SHARD_RE = re.compile(r"\s*(-?\d+)\s*/\s*(-?\d+)\s*")
SHARD_FORM = "I/N: this daemon's number I (0 to N-1) and the number of daemons N, e.g. 0/2"


def score(shard: int, name: str) -> int:
    digest = hashlib.blake2b(f"{shard}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(name: str, count: int) -> int:
    """The shard (0..count-1) that polls the target named `name`."""
    if count == 1:
        return 0
    return max(range(count), key=lambda shard: score(shard, name))


@dataclass(frozen=True, slots=True)
class ShardSpec:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> ShardSpec:
        """ "I/N" -> ShardSpec; ValueError with what is wrong and what is allowed."""
        match = _SHARD_RE.fullmatch(text or "")
        if not match:
            raise ValueError(f"{text!r} is not a shard (allowed: {SHARD_FORM})")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or count > MAX_SHARDS:
            raise ValueError(f"{text!r}: the number of shards N must be 1 to {MAX_SHARDS}, not {count}")
        if not 0 <= index < count:
            raise ValueError(
                f"{text!r}: the shard number I must be 0 to {count - 1} for N={count}, not {index} "
                "(shards count from 0)"
            )
        return cls(index, count)

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, name: str) -> bool:
        return owner(name, self.count) == self.index


T = TypeVar("T")


def assign(names: Iterable[str], count: int) -> dict[str, int]:
    """name -> owning shard, for every name."""
    return {name: owner(name, count) for name in names}


def moved(names: Sequence[str], before: int, after: int) -> list[str]:
    """The names whose owner changes when the fleet goes from `before` to `after` shards."""
    return [name for name in names if owner(name, before) != owner(name, after)]

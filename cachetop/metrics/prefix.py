"""Roll keys up into namespaces: `user:123:cart` -> `user:*:cart`.

A segment (the text between separators) collapses to `*` when it is an id: a number, a UUID,
or a hex id (8 or more hex digits with at least one digit, so words like `deadbeef` collapse
but `cafe` or `facade` do not). A hot namespace then shows even when no single key in it is hot.
"""

from __future__ import annotations

import re
from functools import lru_cache

DEFAULT_SEPARATORS = ":"
WILDCARD = b"*"

_ID_SEGMENT = re.compile(
    rb"-?\d+(?:\.\d+)?"  # numbers, also negative and decimal
    rb"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"  # UUID
    rb"|(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}"  # hex ids, e.g. sha1, Mongo ObjectId
)


class PrefixRoller:
    """Maps keys to their namespace pattern; the separators are any of the given characters."""

    def __init__(self, separators: str = DEFAULT_SEPARATORS, cache_size: int = 8192) -> None:
        if not separators:
            raise ValueError("at least one separator is needed")
        seps = separators.encode()
        self.separators = separators
        self._split = re.compile(b"([" + re.escape(seps) + b"])")
        self.rollup = lru_cache(maxsize=cache_size)(self._rollup)

    def _rollup(self, key: bytes) -> bytes:
        parts = self._split.split(key)
        # Even indexes are segments, odd ones the separators between them.
        for i in range(0, len(parts), 2):
            if _ID_SEGMENT.fullmatch(parts[i]):
                parts[i] = WILDCARD
        return b"".join(parts)


def rollup(key: bytes, separators: str = DEFAULT_SEPARATORS) -> bytes:
    """One-off roll-up; collectors keep a PrefixRoller, which caches."""
    return PrefixRoller(separators, cache_size=0)._rollup(key)

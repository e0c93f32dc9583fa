"""Example warmer: per-user recommendations for active users, computed before they log in.

For each active user: the most popular products of the categories they viewed most, minus what
they already bought. Reads users, views, purchases and products from data/shop.db.
  recs:user:<id>           JSON: up to `count` product ids, best first
Options: db=PATH, count=N (default 10), ttl=DURATION (default 1h).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

from cachetop.engine.configfile import parse_duration
from cachetop.plugins import WarmItem

DEFAULT_DB = Path(__file__).parent / "data" / "shop.db"
PREFIX = b"recs:user:"

RECOMMEND = """
WITH liked AS (
    SELECT p.category_id, COUNT(*) AS n FROM views v JOIN products p ON p.id = v.product_id
    WHERE v.user_id = :user GROUP BY p.category_id
)
SELECT p.id FROM products p JOIN liked l ON l.category_id = p.category_id
WHERE p.id NOT IN (SELECT product_id FROM purchases WHERE user_id = :user) AND p.stock > 0
ORDER BY l.n DESC, p.popularity DESC, p.id LIMIT :count
"""


class UserRecommendationsWarmer:
    """Recommendations for every active user."""

    name: ClassVar[str] = "user-recommendations"
    description: ClassVar[str] = "per-user product recommendations for active users, from SQLite"

    def __init__(self, options: Mapping[str, str]) -> None:
        path = Path(options.get("db") or DEFAULT_DB)
        if not path.is_file():
            raise ValueError(f"db={path}: no such SQLite file")
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self.lock = threading.Lock()
        self.count = int(options.get("count", "10"))
        self.ttl = parse_duration(options.get("ttl", "1h"))

    def plan(self) -> Iterator[WarmItem]:
        with self.lock:
            users = self.db.execute("SELECT id FROM users WHERE active = 1 ORDER BY id").fetchall()
        return (WarmItem(PREFIX + str(uid).encode(), self.ttl) for (uid,) in users)

    def fetch(self, item: WarmItem) -> bytes | None:
        if not item.key.startswith(PREFIX):
            return None
        user = int(item.key[len(PREFIX) :])
        with self.lock:
            rows = self.db.execute(RECOMMEND, {"user": user, "count": self.count}).fetchall()
        return json.dumps([r[0] for r in rows]).encode()


WARMERS = {"user-recommendations": UserRecommendationsWarmer}

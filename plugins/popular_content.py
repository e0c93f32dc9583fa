"""Example warmer: the most read articles, so a cold cache does not send them all to the database.

Reads `articles` from the SQLite database shipped in data/shop.db (or `-o db=PATH`).
  content:article:<slug>   JSON: slug, title, body
Options: db=PATH, top=N (default 20), ttl=DURATION (default 10m).
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
PREFIX = b"content:article:"


class PopularContentWarmer:
    """The top-N articles by views."""

    name: ClassVar[str] = "popular-content"
    description: ClassVar[str] = "the most read articles (top=N) from SQLite"

    def __init__(self, options: Mapping[str, str]) -> None:
        path = Path(options.get("db") or DEFAULT_DB)
        if not path.is_file():
            raise ValueError(f"db={path}: no such SQLite file")
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self.lock = threading.Lock()
        self.top = int(options.get("top", "20"))
        self.ttl = parse_duration(options.get("ttl", "10m"))
        self.total = self.top

    def plan(self) -> Iterator[WarmItem]:
        with self.lock:
            rows = self.db.execute(
                "SELECT slug FROM articles ORDER BY views DESC LIMIT ?", (self.top,)
            ).fetchall()
        return (WarmItem(PREFIX + slug.encode(), self.ttl) for (slug,) in rows)

    def fetch(self, item: WarmItem) -> bytes | None:
        """Also the loader for hotkeys-replay: any content:article:<slug> key can be rebuilt."""
        if not item.key.startswith(PREFIX):
            return None
        slug = item.key[len(PREFIX) :].decode()
        with self.lock:
            row = self.db.execute("SELECT slug, title, body FROM articles WHERE slug = ?", (slug,)).fetchone()
        if row is None:
            return None
        return json.dumps({"slug": row[0], "title": row[1], "body": row[2]}).encode()


WARMERS = {"popular-content": PopularContentWarmer}

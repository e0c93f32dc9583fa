"""Example warmer: an e-commerce catalog (products, category listings, popular searches).

Reads the SQLite database shipped beside it (data/shop.db) or `-o db=PATH`. Keys it warms:
  product:<id>             JSON: id, name, category, price_cents, stock
  category:<slug>          JSON: ids of the category's products, most popular first
  search:<query>           JSON: ids of products whose name matches the query's words
Options: db=PATH, ttl=DURATION (default 1h), products=N (the N most popular; default all).

Load with `plugin_paths = ["plugins"]` in cachetop.toml, then
    cachetop warm redis://127.0.0.1:6379 --strategy ecommerce-catalog
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


def open_db(options: Mapping[str, str]) -> sqlite3.Connection:
    path = Path(options.get("db") or DEFAULT_DB)
    if not path.is_file():
        raise ValueError(f"db={path}: no such SQLite file")
    # Read-only: a warmer must never change the source of truth.
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


class EcommerceCatalogWarmer:
    """Products, category listings and popular searches from a shop's SQLite database."""

    name: ClassVar[str] = "ecommerce-catalog"
    description: ClassVar[str] = "products, category listings and popular searches from SQLite"

    def __init__(self, options: Mapping[str, str]) -> None:
        self.db = open_db(options)
        self.lock = threading.Lock()  # one connection, possibly used from a worker thread
        self.ttl = parse_duration(options.get("ttl", "1h"))
        self.limit = int(options["products"]) if options.get("products") else -1
        self.total = self._count()

    def _rows(self, sql: str, *args: object) -> list[tuple]:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def _product_ids(self) -> list[int]:
        return [
            r[0] for r in self._rows("SELECT id FROM products ORDER BY popularity DESC LIMIT ?", self.limit)
        ]

    def _count(self) -> int:
        (cats,) = self._rows("SELECT COUNT(*) FROM categories")[0]
        (searches,) = self._rows("SELECT COUNT(*) FROM popular_searches")[0]
        return len(self._product_ids()) + cats + searches

    def plan(self) -> Iterator[WarmItem]:
        for pid in self._product_ids():
            yield WarmItem(b"product:%d" % pid, self.ttl)
        for (slug,) in self._rows("SELECT slug FROM categories ORDER BY id"):
            yield WarmItem(f"category:{slug}".encode(), self.ttl)
        for (query,) in self._rows("SELECT query FROM popular_searches ORDER BY searches DESC"):
            yield WarmItem(f"search:{query}".encode(), self.ttl / 2)

    def fetch(self, item: WarmItem) -> bytes | None:
        kind, _, ident = item.key.decode().partition(":")
        if kind == "product":
            rows = self._rows(
                "SELECT p.id, p.name, c.slug, p.price_cents, p.stock FROM products p "
                "JOIN categories c ON c.id = p.category_id WHERE p.id = ?",
                int(ident),
            )
            if not rows:
                return None
            pid, name, cat, price, stock = rows[0]
            doc = {"id": pid, "name": name, "category": cat, "price_cents": price, "stock": stock}
        elif kind == "category":
            rows = self._rows(
                "SELECT p.id FROM products p JOIN categories c ON c.id = p.category_id "
                "WHERE c.slug = ? ORDER BY p.popularity DESC",
                ident,
            )
            doc = [r[0] for r in rows]
        elif kind == "search":
            words = ident.split()
            where = " OR ".join(["name LIKE ?"] * len(words)) or "1"
            sql = f"SELECT id FROM products WHERE {where} ORDER BY popularity DESC LIMIT 50"
            doc = [r[0] for r in self._rows(sql, *[f"%{w.rstrip('s')}%" for w in words])]
        else:
            return None
        return json.dumps(doc, separators=(",", ":")).encode()


WARMERS = {"ecommerce-catalog": EcommerceCatalogWarmer}

"""Builds shop.db, the small SQLite database the example warmers read (deterministic).

    python plugins/data/make_shop_db.py   # rewrites plugins/data/shop.db

Tables: categories, products, popular_searches (the e-commerce catalog), articles (popular
content) and users + views + purchases (per-user recommendations).
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

DB = Path(__file__).with_name("shop.db")
CATEGORIES = [
    "shoes", "jackets", "shirts", "trousers", "bags", "watches",
    "hats", "socks", "scarves", "gloves", "belts", "sunglasses",
]  # fmt: skip
ADJECTIVES = ["classic", "light", "warm", "slim", "rugged", "city", "trail", "soft", "bold", "everyday"]
SEARCHES = [
    "running shoes", "rain jacket", "leather bag", "black shirt", "wool socks", "summer hat",
    "trail shoes", "slim trousers", "winter gloves", "silk scarf", "classic watch", "city bag",
]  # fmt: skip


def build(path: Path = DB) -> None:
    rng = random.Random(6)
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE categories (id INTEGER PRIMARY KEY, slug TEXT UNIQUE NOT NULL, name TEXT NOT NULL);
        CREATE TABLE products (id INTEGER PRIMARY KEY, category_id INTEGER NOT NULL REFERENCES categories(id),
                               name TEXT NOT NULL, price_cents INTEGER NOT NULL, stock INTEGER NOT NULL,
                               popularity INTEGER NOT NULL);
        CREATE TABLE popular_searches (query TEXT PRIMARY KEY, searches INTEGER NOT NULL);
        CREATE TABLE articles (id INTEGER PRIMARY KEY, slug TEXT UNIQUE NOT NULL, title TEXT NOT NULL,
                               body TEXT NOT NULL, views INTEGER NOT NULL);
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, active INTEGER NOT NULL);
        CREATE TABLE views (user_id INTEGER NOT NULL, product_id INTEGER NOT NULL);
        CREATE TABLE purchases (user_id INTEGER NOT NULL, product_id INTEGER NOT NULL);
        """
    )
    for i, slug in enumerate(CATEGORIES, 1):
        db.execute("INSERT INTO categories VALUES (?, ?, ?)", (i, slug, slug.title()))
    for pid in range(1, 241):
        cat = (pid - 1) % len(CATEGORIES) + 1
        name = f"{rng.choice(ADJECTIVES)} {CATEGORIES[cat - 1].rstrip('s')} {pid}"
        db.execute(
            "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)",
            (pid, cat, name, rng.randrange(900, 25000), rng.randrange(0, 50), rng.randrange(1, 10000)),
        )
    for q in SEARCHES:
        db.execute("INSERT INTO popular_searches VALUES (?, ?)", (q, rng.randrange(100, 5000)))
    for aid in range(1, 61):
        db.execute(
            "INSERT INTO articles VALUES (?, ?, ?, ?, ?)",
            (
                aid,
                f"guide-{aid}",
                f"Style guide {aid}",
                f"How to wear it, part {aid}.",
                rng.randrange(10, 90000),
            ),
        )
    for uid in range(1, 51):
        db.execute("INSERT INTO users VALUES (?, ?, ?)", (uid, f"user {uid}", int(uid % 5 != 0)))
        for _ in range(8):
            db.execute("INSERT INTO views VALUES (?, ?)", (uid, rng.randrange(1, 241)))
        for _ in range(2):
            db.execute("INSERT INTO purchases VALUES (?, ?)", (uid, rng.randrange(1, 241)))
    db.commit()
    db.execute("VACUUM")
    db.close()


if __name__ == "__main__":
    build()
    print(f"wrote {DB}")

"""The Keyspace tab's text from a report's JSON (pure: plain dicts, a fixed `now`)."""

from __future__ import annotations

import time

from cachetop.tui.keyspace_rows import (
    age_text,
    cliff_lines,
    compress_lines,
    details_text,
    headline,
    prefix_columns,
    prefix_rows,
    shown,
    with_error,
)
from cachetop.util import format as fmt

NOW = 1_800_000_000.0


def test_estimates_show_their_95_percent_interval_and_exact_figures_none() -> None:
    assert with_error(1_000_000, [990_000, 1_010_000], fmt.short_count, fmt.count) == "1.0M ±1%"
    assert with_error(2_000, [1_900, 2_100], fmt.short_count, fmt.count) == "2.0k ±5%"
    assert with_error(1_234, [1_234, 1_234], fmt.short_count, fmt.count) == "1,234"
    assert with_error(1_234, None, fmt.short_count, fmt.count) == "1,234"
    assert with_error(5_000, [4_999, 5_001], fmt.short_count, fmt.count) == "5.0k ±<1%"
    assert with_error(None, [1, 2], fmt.short_count, fmt.count) == fmt.NA


def test_prefix_row_cells() -> None:
    report = {
        "prefixes": [
            {
                "prefix": "page:*",
                "keys_est": 300,
                "keys_ci95": [300, 300],
                "bytes_est": 307_200,
                "bytes_ci95": [291_840, 322_560],
                "mean_bytes": 1024,
                "ttl": {"none": 300, "lt_1m": 0, "lt_1h": 0, "lt_1d": 0, "longer": 0},
                "idle": {"lt_1m": 100, "lt_1h": 50, "lt_1d": 0, "lt_1w": 100, "longer": 50},
                "compress": {
                    "zstd_ratio": 3.42,
                    "lz4_ratio": 2.1,
                    "recommend": True,
                    "saved_bytes_est": 200_000,
                },
            },
            {"prefix": "sess:*", "keys_est": 10, "ttl": {"none": 2, "lt_1h": 8}, "compress": None},
        ]
    }
    rows = prefix_rows(report)
    page = {k: v[0] for k, v in rows[0].cells.items()}
    assert page == {
        "prefix": "page:*",
        "keys": "300",
        "bytes": "300.0K ±5%",
        "mean": "1.0K",
        "ttl": "none",
        "zip": "3.4x ✓",
        "idle": "50%",
        "lz4": "2.1x",
        "saved": "195.3K",
    }
    sess = {k: v[0] for k, v in rows[1].cells.items()}
    assert sess["ttl"] == "<1h 80%" and sess["zip"] == fmt.NA and sess["idle"] == fmt.NA


def test_columns_fit_80_and_grow_when_wide() -> None:
    narrow = prefix_columns(80)
    assert sum(c.width + 2 for c in narrow) + 2 <= 80
    assert [c.key for c in prefix_columns(120)][-3:] == ["idle", "lz4", "saved"]


def test_headline_and_age() -> None:
    report = {"source": "scan", "keys_total": 1_000_000, "keys_sampled": 10_000, "elapsed_s": 4.24}
    saved = NOW - 180
    clock = time.strftime("%H:%M:%S", time.localtime(saved))
    assert headline(report, saved, NOW) == (
        f"10,000 of 1,000,000 keys sampled in 4.2s · analysed 3m ago ({clock})"
    )
    # Keys written during the walk: the names counted, not DBSIZE at the start, are the total.
    grown = {"source": "scan", "keys_total": 2_014, "keys_scanned": 2_021, "keys_sampled": 2_021}
    assert headline(grown, None) == "2,021 of 2,021 keys sampled"
    dump = {"source": "metadump", "keys_total": 200_000}
    assert headline(dump, None).startswith("200,000 items listed (metadump: every item, exact)")
    assert [age_text(NOW - s, NOW) for s in (1, 42, 60 * 5, 3600 * 2, 86400 * 3)] == [
        "just now",
        "42s ago",
        "5m ago",
        "2h ago",
        "3d ago",
    ]


def test_cliffs_compression_and_hostile_names() -> None:
    report = {
        "cliffs": [
            {
                "at": NOW + 300,
                "keys_est": 50_000,
                "keys_ci95": [46_000, 54_000],
                "prefixes": ["promo:*"],
                "advice": "a TTL jitter of ±15% would spread them",
            }
        ],
        "prefixes": [
            {
                "prefix": "\x1b[31mred:*",
                "compress": {"recommend": True, "codec": "zstd", "saved_bytes_est": 1 << 20},
            }
        ],
        "big_keys": [{"key": "[bold]x" + "y" * 100, "bytes": 4096, "type": "hash"}],
        "idle": [{"over_s": 86400, "keys_est": 1500, "bytes_est": 2048}],
    }
    clock = time.strftime("%H:%M:%S", time.localtime(NOW + 300))
    assert cliff_lines(report, NOW) == [
        f"cliff at {clock} (in 5m00s): 50,000 ±8% keys expire in that second · promo:*",
        "  a TTL jitter of ±15% would spread them",
    ]
    assert compress_lines(report) == ["compress \\x1b[31mred:* with zstd: saves ~1.0M"]
    text = details_text(report, NOW)
    assert "idle: >1d 1.5k keys 2.0K" in text
    assert "big keys: [bold]x" + "y" * 22 + "… 4.0K hash" in text
    assert "\x1b" not in text
    assert shown("a\\x1b", 10) == "a\\x1b"  # already escaped: not escaped twice

"""The compression advisor on exact, known inputs (pure: no server, no clock)."""

from __future__ import annotations

import gzip
import json
import os
import random

import lz4.block
import pytest
import zstandard

from cachetop.analysis.compress import measure_compression


def _order(index: int) -> bytes:
    """A realistic JSON document of about 0.9 KB: an order with repeated field names."""
    items = [
        {"sku": f"SKU-{index % 97:05d}-{n}", "name": "Blue cotton t-shirt", "qty": n + 1, "price_cents": 1999}
        for n in range(8)
    ]
    doc = {
        "order_id": index,
        "customer": {"id": index * 7, "email": f"user{index}@example.com", "country": "GB"},
        "items": items,
        "status": "paid",
        "shipping": {"method": "standard", "address": "221B Baker Street, London"},
    }
    return json.dumps(doc).encode()


def test_json_documents_compress_and_are_recommended() -> None:
    doc = _order(1)
    assert 800 < len(doc) < 1000
    stats = measure_compression([doc] * 1000)
    assert stats is not None
    assert stats.values == 1000 and stats.raw_bytes == 1000 * len(doc)
    # Each copy is compressed on its own, so the ratio is exactly that of one document.
    assert stats.zstd_ratio == pytest.approx(len(doc) / len(zstandard.ZstdCompressor(level=3).compress(doc)))
    assert stats.lz4_ratio == pytest.approx(len(doc) / len(lz4.block.compress(doc)))
    assert stats.gzip_ratio == pytest.approx(len(doc) / len(gzip.compress(doc, compresslevel=6, mtime=0)))
    assert stats.zstd_ratio > 3.0 and stats.lz4_ratio > 2.0 and stats.gzip_ratio > 3.0
    assert stats.recommend is True
    assert stats.best_codec in ("zstd", "gzip")
    assert stats.reason.startswith(f"{stats.best_codec} shrinks values")
    for us in (stats.zstd_compress_us_per_kb, stats.lz4_decompress_us_per_kb, stats.gzip_compress_us_per_kb):
        assert us > 0


def test_random_bytes_are_not_worth_compressing() -> None:
    stats = measure_compression([os.urandom(1000) for _ in range(200)])
    assert stats is not None
    assert stats.zstd_ratio < 1.01 and stats.lz4_ratio < 1.01 and stats.gzip_ratio < 1.01
    assert stats.recommend is False
    assert "under the 20%" in stats.reason
    # A codec that grows the data saves nothing.
    assert stats.saved_bytes_est(1_000_000) <= 0.01 * 1_000_000


def test_small_values_are_not_recommended_even_when_they_shrink() -> None:
    stats = measure_compression([b"ab" * 50] * 200)  # 100 B each, very repetitive
    assert stats is not None
    assert stats.lz4_ratio > 1.25
    assert stats.recommend is False
    assert stats.reason.startswith("values average 100 B, under 256 B")


def test_empty_sample_is_none() -> None:
    assert measure_compression([]) is None


def test_saved_bytes_counts_value_bytes_only_when_keys_are_known() -> None:
    doc = _order(2)
    stats = measure_compression([doc] * 10)
    assert stats is not None
    best = stats.ratio(stats.best_codec)
    assert stats.saved_bytes_est(1_000_000) == pytest.approx(1_000_000 * (1 - 1 / best))
    # 100 keys of len(doc) value bytes each within 1 MB: only those value bytes shrink.
    assert stats.saved_bytes_est(1_000_000, keys_est=100) == pytest.approx(100 * len(doc) * (1 - 1 / best))
    out = stats.to_json(1_000_000, keys_est=100)
    assert out["saved_bytes_est"] == round(100 * len(doc) * (1 - 1 / best))
    assert out["recommend"] is True and out["codec"] == stats.best_codec
    assert {"zstd_ratio", "lz4_ratio", "gzip_ratio"} <= out.keys()


def test_long_values_are_measured_on_a_prefix() -> None:
    big = b"x" * 5000
    stats = measure_compression([big], max_value_bytes=1000)
    assert stats is not None and stats.raw_bytes == 1000


def test_a_sample_of_200_values_is_within_5_percent_of_all_values() -> None:
    """A generated set mixing compressible documents and random tails: the ratio measured on a uniform
    random sample of 200 values is within ±5% of the ratio over every value, for every codec."""
    rng = random.Random(14)
    values = []
    for index in range(5000):
        noise = rng.randbytes(rng.randint(0, 600))  # 0-600 incompressible bytes per value
        values.append(_order(index) + noise.hex().encode()[: rng.randint(0, 1200)])
    everything = measure_compression(values)
    assert everything is not None
    for seed in range(5):
        sample = measure_compression(random.Random(seed).sample(values, 200))
        assert sample is not None
        for codec in ("zstd", "lz4", "gzip"):
            assert sample.ratio(codec) == pytest.approx(everything.ratio(codec), rel=0.05), (seed, codec)

"""Compression advisor: how much a sample of values would shrink with zstd, lz4 and gzip, at what CPU cost.

Each value is compressed on its own, the way a cache client compresses before SET and decompresses after
GET, so the per-value header of each format counts against it (that is what decides whether small values
are worth compressing at all). The ratio is over totals: sum of raw bytes / sum of compressed bytes.

Codecs and containers, chosen to be what a client would store:
- zstd: `zstandard.ZstdCompressor(level=3)` (the library's default level), one frame per value with the
  content size in the header (about 6-9 bytes of overhead), no dictionary.
- lz4: `lz4.block.compress(store_size=True)` (default mode), a raw block with a 4-byte length prefix. The
  block format is chosen over `lz4.frame` because a frame adds 15+ bytes (magic, descriptor, end mark) to
  every value, which would penalise lz4 on small values for framing, not for the codec; the 4-byte size
  is what a client needs to decompress a block.
- gzip: the standard library's `gzip.compress` at level 6 (zlib's default; `gzip.compress` defaults to 9,
  which costs several times the CPU for a few percent), with mtime=0; 18 bytes of header and trailer.

Timings are wall-clock µs per KiB of raw input over one pass of the sample on this machine (the client),
not on the cache server: they compare codecs, they are not a promise for another CPU.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import lz4.block
import zstandard

# Worth it only when values are big enough that the header and the CPU do not eat the gain, and the
# sample shrinks by at least 20% (compressed <= 0.8 * raw, i.e. ratio >= 1.25).
MIN_MEAN_VALUE_BYTES = 256
MIN_RATIO = 1.25
# A value longer than this is measured on its first MAX_VALUE_BYTES: the ratio of a 1 MiB prefix is a fair
# proxy, and one huge string must not stall the client for seconds.
MAX_VALUE_BYTES = 1 << 20
ZSTD_LEVEL = 3
GZIP_LEVEL = 6

CODECS = ("zstd", "lz4", "gzip")


@dataclass(frozen=True)
class CompressionStats:
    """What compressing a sample of values measured; ratios are raw / compressed (higher is better)."""

    values: int
    raw_bytes: int
    zstd_ratio: float
    lz4_ratio: float
    gzip_ratio: float
    zstd_compress_us_per_kb: float
    zstd_decompress_us_per_kb: float
    lz4_compress_us_per_kb: float
    lz4_decompress_us_per_kb: float
    gzip_compress_us_per_kb: float
    gzip_decompress_us_per_kb: float
    recommend: bool
    reason: str

    @property
    def mean_value_bytes(self) -> float:
        return self.raw_bytes / self.values if self.values else 0.0

    @property
    def best_codec(self) -> str:
        """The codec with the highest ratio (zstd on a tie: it is listed first)."""
        return max(CODECS, key=self.ratio)

    def ratio(self, codec: str) -> float:
        return {"zstd": self.zstd_ratio, "lz4": self.lz4_ratio, "gzip": self.gzip_ratio}[codec]

    def saved_bytes_est(self, bytes_est: float, keys_est: float | None = None) -> float:
        """Bytes saved on a prefix holding `bytes_est` bytes if its values were stored with the best codec.

        Only value bytes shrink; key names and per-key overhead do not. With `keys_est`, the compressible
        part is keys_est * mean sampled value size (at most bytes_est); without it, all of bytes_est is
        taken as value bytes, which overstates the saving for small values. Never negative: a codec that
        grows the data saves nothing, since nobody would use it."""
        value_bytes = bytes_est if keys_est is None else min(bytes_est, keys_est * self.mean_value_bytes)
        best = self.ratio(self.best_codec)
        if best <= 1.0 or value_bytes <= 0:
            return 0.0
        return value_bytes * (1.0 - 1.0 / best)

    def to_json(self, bytes_est: float, keys_est: float | None = None) -> dict[str, object]:
        return {
            "zstd_ratio": round(self.zstd_ratio, 3),
            "lz4_ratio": round(self.lz4_ratio, 3),
            "gzip_ratio": round(self.gzip_ratio, 3),
            "saved_bytes_est": round(self.saved_bytes_est(bytes_est, keys_est)),
            "recommend": self.recommend,
            "reason": self.reason,
            "codec": self.best_codec,
            "values_sampled": self.values,
            "mean_value_bytes": round(self.mean_value_bytes, 1),
            "us_per_kb": {
                "zstd": [round(self.zstd_compress_us_per_kb, 2), round(self.zstd_decompress_us_per_kb, 2)],
                "lz4": [round(self.lz4_compress_us_per_kb, 2), round(self.lz4_decompress_us_per_kb, 2)],
                "gzip": [round(self.gzip_compress_us_per_kb, 2), round(self.gzip_decompress_us_per_kb, 2)],
            },
        }


@dataclass(frozen=True)
class _CodecRun:
    compressed_bytes: int
    compress_ns: int
    decompress_ns: int


def _gzip_compress(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def _run_codec(
    values: Sequence[bytes], compress: Callable[[bytes], bytes], decompress: Callable[[bytes], bytes]
) -> _CodecRun:
    started = time.perf_counter_ns()
    packed = [compress(value) for value in values]
    compress_ns = time.perf_counter_ns() - started
    started = time.perf_counter_ns()
    for blob in packed:
        decompress(blob)
    decompress_ns = time.perf_counter_ns() - started
    return _CodecRun(sum(len(blob) for blob in packed), compress_ns, decompress_ns)


def _us_per_kb(ns: int, raw_bytes: int) -> float:
    return (ns / 1000.0) / (raw_bytes / 1024.0) if raw_bytes else 0.0


def _advice(mean_bytes: float, ratios: dict[str, float], lz4_decompress_us: float) -> tuple[bool, str]:
    best = max(CODECS, key=lambda codec: ratios[codec])
    shrink = 1.0 - 1.0 / ratios[best] if ratios[best] > 0 else 0.0
    if mean_bytes < MIN_MEAN_VALUE_BYTES:
        return False, (
            f"values average {mean_bytes:.0f} B, under {MIN_MEAN_VALUE_BYTES} B: headers and CPU outweigh "
            f"the saving ({best} would shrink them {shrink:.0%})"
        )
    if ratios[best] < MIN_RATIO:
        return False, (
            f"the best codec ({best}, ratio {ratios[best]:.2f}) shrinks values {max(shrink, 0.0):.0%}, "
            f"under the {1 - 1 / MIN_RATIO:.0%} that is worth the CPU"
        )
    reason = f"{best} shrinks values {shrink:.0%} (ratio {ratios[best]:.2f}, mean value {mean_bytes:.0f} B)"
    if best != "lz4" and ratios["lz4"] >= MIN_RATIO:
        reason += f"; lz4 reaches {ratios['lz4']:.2f} and decompresses at {lz4_decompress_us:.1f} µs/KB"
    return True, reason


def measure_compression(
    values: Sequence[bytes], *, max_value_bytes: int = MAX_VALUE_BYTES
) -> CompressionStats | None:
    """Compress every value of the sample with zstd, lz4 and gzip; None for an empty sample.

    CPU-bound (a few ms for 200 values of a few KB): call it from a worker thread
    (`asyncio.to_thread`) inside an event loop."""
    if not values:
        return None
    sample = [bytes(value[:max_value_bytes]) for value in values]
    raw_bytes = sum(len(value) for value in sample)
    zstd_c = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    zstd_d = zstandard.ZstdDecompressor()
    runs = {
        "zstd": _run_codec(sample, zstd_c.compress, zstd_d.decompress),
        "lz4": _run_codec(sample, lz4.block.compress, lz4.block.decompress),
        "gzip": _run_codec(sample, _gzip_compress, gzip.decompress),
    }
    ratios = {codec: raw_bytes / run.compressed_bytes for codec, run in runs.items()}
    us = {
        codec: (_us_per_kb(run.compress_ns, raw_bytes), _us_per_kb(run.decompress_ns, raw_bytes))
        for codec, run in runs.items()
    }
    recommend, reason = _advice(raw_bytes / len(sample), ratios, us["lz4"][1])
    return CompressionStats(
        values=len(sample),
        raw_bytes=raw_bytes,
        zstd_ratio=ratios["zstd"],
        lz4_ratio=ratios["lz4"],
        gzip_ratio=ratios["gzip"],
        zstd_compress_us_per_kb=us["zstd"][0],
        zstd_decompress_us_per_kb=us["zstd"][1],
        lz4_compress_us_per_kb=us["lz4"][0],
        lz4_decompress_us_per_kb=us["lz4"][1],
        gzip_compress_us_per_kb=us["gzip"][0],
        gzip_decompress_us_per_kb=us["gzip"][1],
        recommend=recommend,
        reason=reason,
    )

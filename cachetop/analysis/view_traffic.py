"""A hot-key view's sampled keys as KeyTraffic rows, with their stampede bursts: the input of the
hot-key advice, from the CLI's sample (commands/hotkeys_advice_report.py) and from the dashboard's
snapshot (analysis/snapshot_advice.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cachetop.analysis.hotkey_advice import KeyTraffic
from cachetop.hotkeys.view import HotKey, HotKeysView

COUNTED_UNITS = ("ops", "qps")  # sources whose counts are operations (not CPU time or LFU levels)


def key_slot(key: bytes) -> int:
    from redis.crc import key_slot as slot

    return int(slot(key))


def counted(view: HotKeysView) -> bool:
    """The view's counts are operations, so its keys can be weighed against each other."""
    return view.unit in COUNTED_UNITS


def stampede_bursts(view: HotKeysView) -> dict[bytes, tuple[int, int]]:
    """Per key that stampeded: how many bursts, and the most clients that recomputed it in one."""
    bursts: dict[bytes, tuple[int, int]] = {}
    for event in view.stampedes:
        n, writers = bursts.get(event.key, (0, 0))
        bursts[event.key] = (n + 1, max(writers, event.writers))
    return bursts


def key_traffic(
    keys: Iterable[HotKey],
    node: str,
    bursts: Mapping[bytes, tuple[int, int]],
    *,
    cluster: bool,
    value_sizes: Mapping[bytes, int] | None = None,
) -> list[KeyTraffic]:
    """One KeyTraffic per key, in the order given; slots only in a cluster."""
    sizes = value_sizes or {}
    out = []
    for k in keys:
        n, writers = bursts.get(k.key, (0, 0))
        out.append(
            KeyTraffic(
                key=k.key,
                node=node,
                ops_per_sec=k.ops_per_sec or 0.0,
                reads=k.reads,
                writes=k.writes,
                hits=k.hits,
                misses=k.misses,
                value_bytes=sizes.get(k.key),
                slot=key_slot(k.key) if cluster else None,
                stampede_bursts=n,
                stampede_writers=writers,
                sample_share=k.share,
            )
        )
    return out

"""How a hot-key collector's state reads in its view: the rows, which keys are certainly hot,
and the status line that says what the source is doing.

The collector owns the samplers and the counters; these functions only describe them.
"""

from __future__ import annotations

from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.sampler import SamplerReport
from cachetop.hotkeys.view import HotKey, show_key
from cachetop.metrics.topk import KeyCount


def is_hot(kc: KeyCount, settings: HotKeySettings) -> bool:
    s = settings
    _, share, ops = guaranteed(kc)
    return (share or 0) >= s.min_share and (ops or 0) >= s.min_ops


def hot_key_row(kc: KeyCount, hot: bool, knows_hits: bool) -> HotKey:
    return HotKey(
        key=kc.key,
        display=show_key(kc.key),
        count=kc.count,
        ops_per_sec=kc.ops_per_sec,
        share=kc.share,
        reads=kc.reads,
        writes=kc.writes,
        hits=kc.hits if knows_hits else None,
        misses=kc.misses if knows_hits else None,
        error=kc.error,
        hot=hot,
        history=kc.history,
    )


def source_status(status: str, error: str | None, report: SamplerReport | None) -> tuple[str, str]:
    """(status, detail) for the view: the collector's own when off or failing, else the source's."""
    if status in ("off", "error"):
        return status, error or ("hot keys are off for this instance" if status == "off" else "")
    if report is not None:
        return report.status, report.detail
    return status, ""


def guaranteed(kc: KeyCount) -> tuple[bytes, float | None, float | None]:
    """(key, share %, ops/s) from the count less its Space-Saving error: what is certain."""
    fraction = max(0, kc.count - kc.error) / kc.count if kc.count > 0 else 0.0
    share = None if kc.share is None else kc.share * 100 * fraction
    ops = None if kc.ops_per_sec is None else kc.ops_per_sec * fraction
    return kc.key, share, ops

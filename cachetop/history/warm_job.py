"""One scheduled warm-ahead (`[warm] predict = true`), run by the daemon in a worker thread.

The same path as `cachetop warm --predict`: the read-only refusal first, then RedisWarmer with
its per-key locks and rate budget, and one audit line for the outcome (a refusal too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from cachetop.actions.audit import AuditError, AuditLog, ReadOnlyError, check_writable
from cachetop.actions.own_report import ActionOwnReport
from cachetop.actions.redis_nodes import ActionError
from cachetop.actions.warm import RedisWarmer, WarmResult, warm_summary
from cachetop.engine.config import Config, InstanceConfig
from cachetop.history.config import HistorySettings, WarmAheadSettings
from cachetop.history.warm_ahead import PredictedWarmer, default_ttl, make_loader
from cachetop.plugins import PluginFailed, PluginNotFound
from cachetop.util.safe_text import display_key

log = logging.getLogger("cachetop.history")


def run_scheduled_warm(
    config: Config,
    inst: InstanceConfig,
    warm: WarmAheadSettings,
    settings: HistorySettings,
    keys: list[bytes],
    target: int,
    own: ActionOwnReport | None = None,
) -> WarmResult | None:
    audit = AuditLog(config.settings.state_dir, source="daemon")
    what = {
        "strategy": display_key(warm.strategy or "", 60),
        "predict": True,
        "bucket": target,
        "options": {k: display_key(v, 120) for k, v in warm.options.items()},
    }
    try:
        check_writable(inst, read_only=False, action="warm", config_path=config.path)
    except ReadOnlyError as exc:
        _note(audit, inst, "refused", reason=str(exc), what=what)
        return None
    try:
        loader = make_loader(config, warm.strategy or "", dict(warm.options))
    except (PluginNotFound, PluginFailed, ValueError, OSError) as exc:
        _note(audit, inst, "failed", error=str(exc), what=what)
        log.warning("warm ahead on %s: %s", display_key(inst.name, 60), display_key(str(exc), 200))
        return None
    runner = RedisWarmer(
        inst,
        PredictedWarmer(keys, loader, default_ttl(settings, None)),
        timeout=max(config.timeout_of(inst), 2.0),
        rate=warm.rate,
        own=own,
    )
    try:
        result = runner.run(dry_run=False)
    except ActionError as exc:
        _note(audit, inst, "failed", error=str(exc), what=what)
        return None
    outcome = "failed" if result.error else "done"
    _note(audit, inst, outcome, what=what, error=result.error, **result.as_json())
    log.info("warm ahead of bucket %d: %s", target, warm_summary(result, inst.name))
    return result


def _note(audit: AuditLog, inst: InstanceConfig, outcome: str, **fields: object) -> None:
    try:
        audit.record("warm", inst, outcome=outcome, **fields)
    except AuditError as exc:
        log.error("%s: this warm-ahead %s outcome is not in it", exc, outcome)


def start_warm_task(
    config: Config,
    inst: InstanceConfig,
    warm: WarmAheadSettings,
    settings: HistorySettings,
    keys: list[bytes],
    target: int,
    results: list[tuple[str, int, Any]],
    own: ActionOwnReport | None = None,
) -> asyncio.Task[None]:
    """The daemon's warm-ahead as a task: the blocking warm runs in a thread; its result is kept
    in `results` (the last 50). `own`: where it reports what it sends, when a poller watches the
    instance (actions/own_report.py), so the warm does not show as the users' traffic."""

    async def job() -> None:
        result = await asyncio.to_thread(run_scheduled_warm, config, inst, warm, settings, keys, target, own)
        if result is not None:
            results.append((inst.name, target, result))
            del results[:-50]

    task = asyncio.get_running_loop().create_task(job(), name=f"warm ahead {inst.name}")
    task.add_done_callback(_log_failure)
    return task


def _log_failure(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        exc = task.exception()
        if exc is not None:
            log.warning("warm ahead failed: %s", display_key(str(exc), 200))

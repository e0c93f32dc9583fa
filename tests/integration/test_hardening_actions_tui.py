"""Issue 12, the dashboard's evict (Pilot, real Redis): no evict without its intent line in the
audit log, and leaving the app mid-evict still writes the exact outcome."""

from __future__ import annotations

import json
from pathlib import Path

import redis as redis_py

from cachetop.actions.evict import EvictRequest
from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from cachetop.tui.widgets.confirm_evict import ConfirmEvictScreen, request_evict
from tests.cluster_fixture import load_keys
from tests.conftest import until


def _config(server: LocalServer, state: Path) -> Config:
    return Config(
        path=None,
        settings=Settings(interval=0.25, window=4.0, timeout=1.0, state_dir=state),
        instances=(InstanceConfig(name="r1", target=parse_target(server.url)),),
    )


def _messages(app: CachetopApp) -> list[str]:
    return [n.message for n in app._notifications]


def _audit(state: Path) -> list[dict[str, object]]:
    path = state / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_tui_evict_refuses_when_the_audit_log_cannot_be_written(
    redis: LocalServer, tmp_path: Path
) -> None:
    client = redis_py.Redis(port=redis.port)
    client.set("hot:1", "v")
    (tmp_path / "audit.jsonl").symlink_to("/dev/full")  # every write: ENOSPC, for root too
    app = CachetopApp(_config(redis, tmp_path))
    async with app.run_test(size=(100, 30)):
        request_evict(app, "r1", EvictRequest(keys=(b"hot:1",)))
        button = await until(
            lambda: isinstance(app.screen, ConfirmEvictScreen) and app.screen.query("#evict-confirm"),
            what="the modal's Evict button",
        )
        button.first().press()  # type: ignore[union-attr]
        await until(lambda: not isinstance(app.screen, ConfirmEvictScreen), what="the modal closes")
        toast = await until(
            lambda: [m for m in _messages(app) if m.startswith("refused: cannot write the audit log")],
            what="the refusal",
        )
    assert toast == [  # type: ignore[comparison-overlap]
        f"refused: cannot write the audit log {tmp_path / 'audit.jsonl'}: No space left on device "
        "(free space there, or set state_dir to a writable place); nothing was evicted"
    ]
    assert client.exists("hot:1") == 1


async def test_leaving_the_app_mid_evict_writes_the_exact_outcome(redis: LocalServer, tmp_path: Path) -> None:
    total = 60_000  # 3 s at the dashboard's 20,000 keys/s: the app is left long before
    load_keys(redis.port, [b"sess:%d" % i for i in range(total)])
    client = redis_py.Redis(port=redis.port)
    app = CachetopApp(_config(redis, tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        request_evict(app, "r1", EvictRequest(pattern=b"sess:*"))
        await until(lambda: isinstance(app.screen, ConfirmEvictScreen), deadline_s=20, what="modal")
        await pilot.press(*"r1", "enter")
        await until(lambda: client.dbsize() < total - 2_000, what="the evict under way")
        app.exit()  # what q, SIGTERM and SIGHUP do
    outcome = await until(
        lambda: [e for e in _audit(tmp_path) if e["outcome"] != "intent"], deadline_s=10, what="the outcome"
    )
    gone = total - client.dbsize()
    intent = _audit(tmp_path)[0]
    assert intent["outcome"] == "intent" and intent["run"] == outcome[0]["run"]  # type: ignore[index]
    assert (outcome[0]["outcome"], outcome[0]["evicted"]) == ("cancelled", gone)  # type: ignore[index]
    assert 0 < gone < total

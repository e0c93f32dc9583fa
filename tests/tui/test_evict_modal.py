"""Evict from the dashboard (Pilot, real Redis): a hot key from the Hot keys tab through the
confirmation modal, the typed-name guard above 1000 keys, declining, and --read-only."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis as redis_py

from cachetop.actions.evict import EvictRequest
from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.view import HotKey, HotKeysView
from cachetop.model import InstanceMetrics, Snapshot, Status
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from cachetop.tui.screens.detail import DetailScreen
from cachetop.tui.widgets.confirm_evict import ConfirmEvictScreen, evict_from_panel, request_evict
from cachetop.tui.widgets.hotkeys_panel import HotKeysPanel
from tests.cluster_fixture import load_keys
from tests.tui.helpers import cell, text, until


def _config(server: LocalServer, state: Path, **inst: object) -> Config:
    return Config(
        path=None,
        settings=Settings(interval=0.25, window=4.0, timeout=1.0, state_dir=state),
        instances=(InstanceConfig(name="r1", target=parse_target(server.url), **inst),),  # type: ignore[arg-type]
        sections={"hotkeys": HotKeySettings(monitor_on=0.5, monitor_off=0.5, big_keys=False)},
    )


def messages(app: CachetopApp) -> list[str]:
    return [n.message for n in app._notifications]  # as tests/tui/test_live.py reads toasts


def _audit(state: Path) -> list[dict[str, object]]:
    path = state / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _snapshot_with_hot_keys(server: LocalServer) -> Snapshot:
    """What the hot-key collector attaches: hot:1 on top, then cold:1 (the collector itself is
    tested with real MONITOR traffic in tests/integration/test_hotkeys_redis.py)."""
    hot = HotKey(key=b"hot:1", display="hot:1", count=900, ops_per_sec=90.0, share=0.6, reads=900, hot=True)
    cold = HotKey(key=b"cold:1", display="cold:1", count=10, ops_per_sec=1.0, share=0.01, reads=10)
    view = HotKeysView(name="r1", source="monitor", unit="ops", status="sampling", keys=(cold, hot))
    inst = InstanceMetrics(
        name="r1", kind="redis", address=server.address, status=Status.UP, error=None, metrics={},
        extras={"hotkeys": view},
    )  # fmt: skip
    return Snapshot(time=time.time(), window_s=10.0, instances=(inst,))


async def test_evict_a_hot_key_from_the_hot_keys_tab(redis: LocalServer, tmp_path: Path) -> None:
    client = redis_py.Redis(port=redis.port)
    client.set("hot:1", "v")
    client.set("cold:1", "v")
    app = CachetopApp(_config(redis, tmp_path), snapshots=[_snapshot_with_hot_keys(redis)])
    async with app.run_test(size=(120, 32)) as pilot:
        await until(lambda: cell(app, "r1", "name"), what="the overview row")
        table = app.screen.query_one("FleetTable")
        table.move_cursor(row=table.get_row_index("r1"))
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, DetailScreen), what="detail")
        app.screen.query_one("#tabs").active = "tab-hotkeys"
        panel = app.screen.query_one(HotKeysPanel)
        panel.show_snapshot(app.latest)
        await until(lambda: "hot:1" in text(app), what="hot:1 in the panel")
        evict_from_panel(panel)  # what the panel's "e" binding calls: the top row, hot:1
        modal = await until(
            lambda: isinstance(app.screen, ConfirmEvictScreen) and app.screen, what="the modal"
        )
        await until(lambda: "would evict 1 key from r1, e.g. hot:1" in text(app), what="the dry run's line")
        assert client.exists("hot:1") == 1  # nothing happens before the confirmation
        modal.query_one("#evict-confirm").press()
        await until(lambda: not isinstance(app.screen, ConfirmEvictScreen), what="modal closes")
        await until(lambda: "evicted 1 of 1 matched keys from r1" in messages(app), what="the result toast")
    assert client.exists("hot:1") == 0 and client.exists("cold:1") == 1
    entry = _audit(tmp_path)[-1]
    assert (entry["source"], entry["action"], entry["outcome"], entry["evicted"]) == (
        "tui",
        "evict",
        "done",
        1,
    )
    assert entry["what"] == {"keys": ["hot:1"], "key_count": 1}


async def test_more_than_1000_keys_needs_the_instance_name(redis: LocalServer, tmp_path: Path) -> None:
    load_keys(redis.port, [b"sess:%d" % i for i in range(1500)] + [b"keep"])
    app = CachetopApp(_config(redis, tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        request_evict(app, "r1", EvictRequest(pattern=b"sess:*"))
        modal = await until(lambda: isinstance(app.screen, ConfirmEvictScreen) and app.screen, what="modal")
        await until(lambda: "would evict 1,500 keys from r1" in text(app), what="the dry run's line")
        button = modal.query_one("#evict-confirm")
        assert button.disabled
        await pilot.press(*"r2")
        assert button.disabled and isinstance(app.screen, ConfirmEvictScreen)
        await pilot.press("backspace", "1")
        assert not button.disabled
        await pilot.press("enter")
        await until(lambda: not isinstance(app.screen, ConfirmEvictScreen), deadline_s=15, what="evicted")
    assert redis_py.Redis(port=redis.port).dbsize() == 1
    assert _audit(tmp_path)[-1]["evicted"] == 1500


async def test_declining_changes_nothing(redis: LocalServer, tmp_path: Path) -> None:
    redis_py.Redis(port=redis.port).set("k", "v")
    app = CachetopApp(_config(redis, tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        request_evict(app, "r1", EvictRequest(keys=(b"k",)))
        await until(lambda: isinstance(app.screen, ConfirmEvictScreen), what="modal")
        await pilot.press("escape")
        await until(lambda: not isinstance(app.screen, ConfirmEvictScreen), what="closed")
    assert redis_py.Redis(port=redis.port).exists("k") == 1
    assert [(e["outcome"], e["matched"]) for e in _audit(tmp_path)] == [("declined", 1)]


async def test_read_only_refuses_and_the_audit_log_says_so(redis: LocalServer, tmp_path: Path) -> None:
    redis_py.Redis(port=redis.port).set("hot:1", "v")
    for app in (
        CachetopApp(_config(redis, tmp_path), read_only=True),
        CachetopApp(_config(redis, tmp_path, read_only=True)),
    ):
        async with app.run_test(size=(100, 30)):
            request_evict(app, "r1", EvictRequest(keys=(b"hot:1",)))
            await until(lambda: any("refused:" in m for m in messages(app)), what="the toast")  # noqa: B023
            assert not isinstance(app.screen, ConfirmEvictScreen)
    assert redis_py.Redis(port=redis.port).exists("hot:1") == 1
    reasons = [e["reason"] for e in _audit(tmp_path)]
    assert [e["outcome"] for e in _audit(tmp_path)] == ["refused", "refused"]
    assert reasons[0].startswith("refused: cachetop runs with --read-only, so evict on r1 is not allowed")
    assert reasons[1].startswith("refused: instance r1 is read_only = true")

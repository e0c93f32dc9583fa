"""Issue 14, the Keyspace tab (Pilot, real Redis with MONITOR hot-key sampling running): `a` runs one
analysis with its progress on screen, the hot-key sampler pauses so the process holds at most 3
connections, exact figures appear at 80x24, reopening shows the kept report with its age, leaving
the tab cancels (the connection closes), and `i` evicts idle keys through the usual confirmation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
import redis.asyncio as aioredis

from cachetop.actions.evict import EvictRequest
from cachetop.analysis.keyspace import load_report, save_report
from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.live import LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.hotkeys.config import HotKeySettings
from cachetop.servers import LocalServer
from cachetop.tui.app import CachetopApp
from cachetop.tui.evict_own import evict_report
from cachetop.tui.keyspace_rows import prefix_columns
from cachetop.tui.widgets.confirm_evict import ConfirmEvictScreen
from cachetop.tui.widgets.keyspace_evict import IdleEvictScreen, idle_request
from cachetop.tui.widgets.keyspace_panel import KeyspacePanel
from tests.tui.helpers import keys, open_detail, open_tab, text, until

SESSIONS = 1234
PAGES = 150
PAGE = json.dumps({"title": "Blue cotton t-shirt", "tags": ["sale", "summer"] * 20, "body": "lorem " * 80})


def _config(redis: LocalServer, state: Path, **settings: Any) -> Config:
    return Config(
        path=None,
        settings=Settings(interval=0.25, window=4.0, timeout=1.0, state_dir=state),
        instances=(InstanceConfig(name="r1", target=parse_target(redis.url)),),
        sections={"hotkeys": HotKeySettings(monitor_on=0.5, monitor_off=0.3, big_keys=False)},
    )


def _load(port: int) -> None:
    client = redis_py.Redis(port=port)
    pipe = client.pipeline(transaction=False)
    for i in range(SESSIONS):
        pipe.set(f"sess:{i}", "x" * 40, ex=3600)
    for i in range(PAGES):
        pipe.set(f"page:{i}", PAGE)
    pipe.execute()
    client.close()


@contextlib.asynccontextmanager
async def dashboard(config: Config, size: tuple[int, int], **kw: Any) -> AsyncIterator[CachetopApp]:
    async with Monitor(config) as mon:
        app = CachetopApp(config, monitor=mon, **kw)
        async with LiveSources(config, mon, alerts=False) as live, app.run_test(size=size):
            app.live = live  # type: ignore[attr-defined]  # as tui/run.py does
            yield app


async def _open_keyspace(app: CachetopApp) -> KeyspacePanel:
    await open_detail(app, "r1")
    await open_tab(app, "tab-keyspace")
    panel = app.screen.query_one("#keyspace", KeyspacePanel)
    await until(lambda: panel.is_mounted and panel.query("#keyspace-status"), what="the Keyspace tab mounted")
    return panel


async def _ours(counter: aioredis.Redis) -> list[str]:
    return sorted(
        c["name"].split(":")[0] for c in await counter.client_list() if c["name"].startswith("cachetop")
    )


@pytest.fixture
def slow_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2,000 commands a second: the analysis of these keys takes a few seconds, long enough to watch.
    monkeypatch.setattr(KeyspacePanel, "ANALYSIS_OPTIONS", {"rate": 2000})


async def test_analyse_shows_progress_exact_figures_and_keeps_within_three_connections(
    redis: LocalServer, tmp_path: Path, slow_analysis: None
) -> None:
    _load(redis.port)
    config = _config(redis, tmp_path / "state")
    counter = aioredis.Redis(port=redis.port, client_name="counter", driver_info=None)
    try:
        async with dashboard(config, (80, 24)) as app:
            collector = app.live.collectors["r1"]  # type: ignore[attr-defined]
            await until(lambda: collector.sampler is not None, what="the hot-key sampler")
            panel = await _open_keyspace(app)
            await until(lambda: "a: analyse the keyspace" in text(app), what="the tab's hint")
            await until(lambda: "a Analyse  i Evict idle" in text(app), what="a and i in the footer")
            assert not panel.running  # nothing runs by itself
            await keys(app, "a")
            await until(lambda: "analysing (" in text(app), what="the progress line")
            seen: list[list[str]] = []
            while panel.running:
                ours = await _ours(counter)
                seen.append(ours)
                assert len(ours) <= 3, ours
                assert "cachetop-hotkeys-monitor" not in ours or "cachetop-keyspace" not in ours, ours
                await asyncio.sleep(0.05)
            assert any("cachetop-keyspace" in ours for ours in seen), seen
            await until(lambda: "sess:*" in text(app), what="the report")
            assert panel.report is not None and panel.error is None
            screen = text(app)
            # Every key was sampled (fewer than 10,000): the counts are exact, shown without ±.
            row = next(line for line in screen.splitlines() if "sess:*" in line)
            assert "1,234" in row and "±" not in row
            page_row = next(line for line in screen.splitlines() if "page:*" in line)
            assert "150" in page_row and "✓" in page_row  # compressible JSON is recommended
            # Fits 80 columns: the header row has every column's label, and no horizontal scrollbar.
            header = next(line for line in screen.splitlines() if line.lstrip().startswith("prefix "))
            assert header.split() == [c.label for c in prefix_columns(80)]
            assert not any(
                set(line.strip()) <= set("▁▂▃▄▅▆▇█") and line.strip() for line in screen.splitlines()
            )
            assert "analysed just now" in screen
            # The hot-key sampler is back after the analysis.
            await until(lambda: collector._task is not None and not collector._task.done(), what="resumed")
        saved = load_report(config.settings.state_dir, "r1")
        assert saved is not None
        report, _ = saved
        by_prefix = {p["prefix"]: p for p in report["prefixes"]}
        assert by_prefix["sess:*"]["keys_est"] == SESSIONS and by_prefix["page:*"]["keys_est"] == PAGES
        assert "cachetop-keyspace" not in await _ours(counter)
    finally:
        await counter.aclose()


async def test_reopening_shows_the_kept_report_with_its_age(redis: LocalServer, tmp_path: Path) -> None:
    config = _config(redis, tmp_path / "state")
    report = {
        "name": "r1",
        "kind": "redis",
        "source": "scan",
        "keys_total": 5000,
        "keys_sampled": 5000,
        "elapsed_s": 1.5,
        "prefixes": [
            {"prefix": "\\x1b[31m:*", "keys_est": 5000, "keys_ci95": [5000, 5000], "bytes_est": 400000}
        ],
        "cliffs": [],
        "idle": [{"over_s": 3600, "keys_est": 1200, "bytes_est": 96000}],
        "big_keys": [{"key": "[bold]big", "bytes": 2048, "type": "hash"}],
    }
    save_report(config.settings.state_dir, report, now=time.time() - 180)
    async with dashboard(config, (80, 24)) as app:
        panel = await _open_keyspace(app)
        await until(lambda: "analysed 3m ago" in text(app), what="the kept report's age")
        for shown in ("5,000", "\\x1b[31m:*", ">1h 1.2k keys 93.8K", "[bold]big 2.0K hash"):
            await until(lambda shown=shown: shown in text(app), what=shown)  # escaped, never interpreted
        assert not panel.running


async def test_leaving_the_tab_cancels_and_closes_the_connection(
    redis: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load(redis.port)
    monkeypatch.setattr(KeyspacePanel, "ANALYSIS_OPTIONS", {"rate": 300})  # long enough to leave mid-way
    config = _config(redis, tmp_path / "state")
    counter = aioredis.Redis(port=redis.port, client_name="counter", driver_info=None)
    try:
        async with dashboard(config, (100, 30)) as app:
            collector = app.live.collectors["r1"]  # type: ignore[attr-defined]
            panel = await _open_keyspace(app)
            await keys(app, "a")
            await until(lambda: "analysing (" in text(app), what="running")
            await until(lambda: panel.paused_hotkeys, what="hot keys paused")
            await open_tab(app, "tab-charts")
            await until(lambda: not panel.running, what="cancelled")
            ours = await _ours(counter)
            assert "cachetop-keyspace" not in ours, ours
            await until(lambda: collector._task is not None and not collector._task.done(), what="resumed")
            assert load_report(config.settings.state_dir, "r1") is None  # nothing half-done was kept
    finally:
        await counter.aclose()


async def test_quitting_mid_analysis_leaves_no_connection(
    redis: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load(redis.port)
    monkeypatch.setattr(KeyspacePanel, "ANALYSIS_OPTIONS", {"rate": 300})
    config = _config(redis, tmp_path / "state")
    counter = aioredis.Redis(port=redis.port, client_name="counter", driver_info=None)
    try:
        async with dashboard(config, (100, 30)) as app:
            panel = await _open_keyspace(app)
            await keys(app, "a")
            await until(lambda: panel.paused_hotkeys, what="running, hot keys paused")
            app.exit()
        # The analysis was cancelled with the app, and the sampler was not started again after it.
        names: list[str] = []

        async def ours() -> list[str]:
            names[:] = await _ours(counter)
            return names

        deadline = time.monotonic() + 10
        while await ours():
            assert time.monotonic() < deadline, names
            await asyncio.sleep(0.05)
    finally:
        await counter.aclose()


async def test_evict_idle_from_the_tab_goes_through_the_confirmation(
    redis: LocalServer, tmp_path: Path
) -> None:
    client = redis_py.Redis(port=redis.port)
    client.set("template", "v")
    payload = client.dump("template")
    for i in range(40):
        client.restore(f"old:{i}", 0, payload, idletime=7200)  # as if written two hours ago
    client.set("old:fresh", "v")
    client.delete("template")
    config = _config(redis, tmp_path / "state")
    report = {
        "name": "r1",
        "source": "scan",
        "prefixes": [{"prefix": "old:*", "keys_est": 40}, {"prefix": "x:*"}],
    }
    save_report(config.settings.state_dir, report)
    async with dashboard(config, (100, 30)) as app:
        await _open_keyspace(app)
        await until(lambda: "old:*" in text(app), what="the kept report")
        hits_before = client.info("stats")["keyspace_hits"]
        await keys(app, "i")
        modal = await until(lambda: isinstance(app.screen, IdleEvictScreen) and app.screen, what="asked")
        await until(lambda: modal.query("#idle-pattern"), what="the questions")
        assert modal.query_one("#idle-pattern").value == "old:*"  # the selected row's prefix
        modal.query_one("#idle-over").value = "1h"
        await keys(app, "enter")
        confirm = await until(
            lambda: isinstance(app.screen, ConfirmEvictScreen) and app.screen, what="confirm"
        )
        assert confirm.preview.matched == 40
        # The report's prefix, not a glob: exactly the keys it counted under old:* (old:fresh rolls
        # up to itself: it is not even checked).
        assert (confirm.request.prefix, confirm.request.idle_over_s) == (b"old:*", 3600)
        await until(lambda: "would evict 40 keys from r1" in text(app), what="the dry run")
        assert "prefix old:* idle over 3600s" in text(app)
        app.screen.query_one("#evict-confirm").press()
        await until(lambda: not isinstance(app.screen, ConfirmEvictScreen), what="done")
        # 40 OBJECT IDLETIME lookups in the dry run and 40 in the evict: keyspace hits the server
        # counted, and the dashboard counted as its own (so its hit ratio leaves them out).
        report = evict_report(app, "r1", asyncio.get_running_loop())
        assert report is not None and report.traffic.hits() == 80 and report.traffic.misses() == 0
        assert report.traffic.commands()["object|idletime"] == 80
        assert client.info("stats")["keyspace_hits"] - hits_before == 80
    assert client.exists(*[f"old:{i}" for i in range(40)]) == 0
    assert client.exists("old:fresh") == 1
    audit = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["outcome"] == "done" and audit[-1]["evicted"] == 40
    assert audit[-1]["what"] == {"prefix": "old:*", "idle_over_s": 3600}
    assert len(audit[-1]["examples"]) == 5 and all(k.startswith("old:") for k in audit[-1]["examples"])
    client.close()


async def test_read_only_refuses_evict_idle(redis: LocalServer, tmp_path: Path) -> None:
    config = _config(redis, tmp_path / "state")
    async with dashboard(config, (100, 30), read_only=True) as app:
        await _open_keyspace(app)
        await keys(app, "i")
        audit_file = tmp_path / "state" / "audit.jsonl"
        await until(audit_file.exists, what="the refusal's audit line")
        toasts = [n.message for n in app._notifications]  # as tests/tui/test_evict_modal.py reads them
        assert any(t.startswith("refused: cachetop runs with --read-only, so evict on r1") for t in toasts)
        assert not isinstance(app.screen, IdleEvictScreen)  # nothing to type before the refusal
    audit = [json.loads(line) for line in audit_file.read_text().splitlines()]
    assert [(a["outcome"], a["what"]) for a in audit] == [("refused", {"pattern": "*", "idle_over_s": 86400})]
    assert "--read-only" in audit[0]["reason"]


def test_idle_request_uses_a_report_prefix_exactly_and_anything_else_as_a_glob() -> None:
    prefixes = frozenset({"user:*:cart", "sess:*"})
    assert idle_request("1d", "user:*:cart", prefixes) == EvictRequest(
        prefix=b"user:*:cart", idle_over_s=86400
    )
    assert idle_request("90m", "user:*", prefixes) == EvictRequest(pattern=b"user:*", idle_over_s=5400)
    assert idle_request("1.5s", "", prefixes) == EvictRequest(pattern=b"*", idle_over_s=2)
    with pytest.raises(ValueError, match="at least 1s"):
        idle_request("500ms", "*")
    with pytest.raises(ValueError, match="not a duration"):
        idle_request("soon", "*")


async def test_a_server_that_is_gone_keeps_the_last_report_and_says_why(
    redis: LocalServer, tmp_path: Path
) -> None:
    config = _config(redis, tmp_path / "state")
    save_report(
        config.settings.state_dir, {"name": "r1", "source": "scan", "prefixes": [{"prefix": "kept:*"}]}
    )
    async with dashboard(config, (100, 30)) as app:
        panel = await _open_keyspace(app)
        await until(lambda: "kept:*" in text(app), what="the kept report")
        redis_py.Redis(port=redis.port).shutdown(nosave=True)
        await keys(app, "a")
        await until(lambda: "analysis failed: " in text(app), what="the failure, said")
        assert panel.report is not None and panel.report["prefixes"][0]["prefix"] == "kept:*"
        assert "kept:*" in text(app)
    saved = load_report(config.settings.state_dir, "r1")
    assert saved is not None and saved[0]["prefixes"][0]["prefix"] == "kept:*"


async def test_an_attached_dashboard_sends_the_idle_threshold_to_the_daemon(
    redis: LocalServer, tmp_path: Path
) -> None:
    """An idle evict through an attached daemon keeps its threshold: the daemon's dry run of
    "k:* idle over 60 s" matches none of 20 keys written just now (without the threshold it would
    match all 20), and nothing is evicted."""
    from cachetop.sources.attach import AttachSource
    from cachetop.tui.widgets.confirm_evict import request_evict
    from cachetop.tui.widgets.remote_evict import RemoteConfirmScreen
    from tests.api_daemon import start_api_daemon

    client = redis_py.Redis(port=redis.port)
    client.mset({f"k:{i}": "v" for i in range(20)})
    daemon = start_api_daemon(tmp_path, {"r1": redis.url})
    source = AttachSource(daemon.url, daemon.token, action_token=daemon.action_token)
    try:
        await source.start()
        await source.wait_snapshot(timeout=15)
        app = CachetopApp(_config(redis, tmp_path / "state"), monitor=source)
        async with app.run_test(size=(100, 30)):
            request_evict(app, "r1", EvictRequest(pattern=b"k:*", idle_over_s=60))
            await until(lambda: isinstance(app.screen, RemoteConfirmScreen), what="the daemon's plan")
            assert app.screen.plan["matched"] == 0
            await keys(app, "escape")  # declined: the daemon hears of it, then the modal closes
            await until(lambda: not isinstance(app.screen, RemoteConfirmScreen), what="the plan declined")
    finally:
        await source.stop()
        daemon.stop()
    assert client.dbsize() == 20
    client.close()

"""The Keyspace tab on memcached (Pilot, a real memcached with `watch` hot-key sampling): `i` evicts the
items idle for the threshold, from the LRU crawler's metadump, through the usual dry run and dialog."""

from __future__ import annotations

import json
from pathlib import Path

from pymemcache.client.base import Client

from cachetop.servers import LocalServer
from cachetop.tui.widgets.confirm_evict import ConfirmEvictScreen
from cachetop.tui.widgets.keyspace_evict import IdleEvictScreen
from tests.integration.test_evict_idle import kept_in_use, wait_for
from tests.tui.helpers import keys, text, until
from tests.tui.test_keyspace_tab import _config, _open_keyspace, dashboard


async def test_evict_idle_items_from_the_tab(memcached: LocalServer, tmp_path: Path) -> None:
    client = Client(("127.0.0.1", memcached.port))
    for i in range(30):
        client.set(f"old:{i}", b"v" * 40)
    written = int(client.stats()[b"time"])
    wait_for(lambda: int(client.stats()[b"time"]) >= written + 3, 10.0, "3 s on the server's clock")
    writer = Client(("127.0.0.1", memcached.port))  # the application: old:fresh stays in use
    config = _config(memcached, tmp_path / "state")
    with kept_in_use(lambda: writer.set("old:fresh", b"v")):
        async with dashboard(config, (100, 30)) as app:
            await _open_keyspace(app)
            await keys(app, "i")
            modal = await until(lambda: isinstance(app.screen, IdleEvictScreen) and app.screen, what="asked")
            await until(lambda: modal.query("#idle-pattern"), what="the questions")
            modal.query_one("#idle-over").value = "2s"
            modal.query_one("#idle-pattern").value = "old:*"
            await keys(app, "enter")
            confirm = await until(
                lambda: isinstance(app.screen, ConfirmEvictScreen) and app.screen, what="the dialog"
            )
            assert confirm.preview.matched == 30
            await until(lambda: "would evict 30 keys from r1" in text(app), what="the dry run")
            app.screen.query_one("#evict-confirm").press()
            await until(lambda: not isinstance(app.screen, ConfirmEvictScreen), what="done")
    assert all(client.get(f"old:{i}") is None for i in range(30))
    assert client.get("old:fresh") == b"v"
    audit = [json.loads(line) for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()]
    assert (audit[-1]["outcome"], audit[-1]["matched"], audit[-1]["evicted"]) == ("done", 30, 30)
    assert audit[-1]["what"] == {"pattern": "old:*", "idle_over_s": 2}
    client.close()
    writer.close()

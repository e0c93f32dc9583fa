"""Snapshot tests of the overview, the detail view and help at 80x24 and 160x48.

Fixed data (cachetop/tui/sample_data.py), no Monitor, no clock in the header, no blinking
cursor: the SVGs are identical on every run. Update with `pytest --snapshot-update` after a
deliberate change, and look at the new SVGs before committing them.
"""

from __future__ import annotations

from typing import Any

import pytest

from cachetop.tui.app import CachetopApp
from cachetop.tui.sample_data import sample_config, sample_snapshots

SIZES = [(80, 24), (160, 48)]


def _app() -> CachetopApp:
    return CachetopApp(sample_config(), snapshots=sample_snapshots())


async def _open_detail(pilot: Any) -> None:
    screen = pilot.app.screen
    screen._select("api-cache")
    screen.action_open()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overview(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(_app(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detail(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(_app(), terminal_size=size, run_before=_open_detail)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(_app(), terminal_size=size, press=["question_mark"])


def test_light_theme_overview(snap_compare: Any) -> None:
    app = CachetopApp(sample_config(), snapshots=sample_snapshots(), theme="light")
    assert snap_compare(app, terminal_size=(80, 24))

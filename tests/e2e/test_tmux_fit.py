"""Issue 13, "fitting the terminal": `cachetop demo` in a real terminal (tmux) at 80x24, every
view checked for a cut value, line by line, on the real screen.

A value is "cut" when:
- a label is left without its value: the header must end its timing with `window 10s`, the
  detail's summary line must end with `err <n>%` and show every label with a value;
- a footer key is cut: the footer is a list of `key Description` items, each one wholly known
  (`- Interv` is not), and `^p palette` at the right;
- a table is wider than the screen: its header row must show every column's label, and no
  horizontal scrollbar line (a line of one block character) may appear;
- a word is cut at the right edge: no table or text line may run into the last column unless it
  ends with `…` (the table's own cut) or is a border;
- help loses its keys: `q` (quit) must be on the help screen.
"""

from __future__ import annotations

import re
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachetop.tui.detail_rows import CLIENT_COLUMNS, COMMAND_COLUMNS, FACT_COLUMNS, SLOWLOG_COLUMNS
from cachetop.tui.widgets.alerts_panel import ALERT_COLUMNS
from cachetop.tui.widgets.hotkeys_panel import key_columns
from tests import tmux
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
CACHETOP = Path(sys.executable).parent / "cachetop"
WIDTH, HEIGHT = 80, 24
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

FOOTER_ITEMS = {
    "/ Filter", "s Sort", "q Quit", "? Help", "p Pause", "r Refresh", "+ Slower", "- Faster",
    "esc Back", "e Evict key", "enter Details", "+ Interval+", "- Interval-",
}  # fmt: skip
HEADER_TIMING = re.compile(r"every 0\.5s · window 10s( ▲ \d+ firing| alerts ok| △ \d+ pending)?$")
SUMMARY = re.compile(
    r"(UP|DOWN)\S* hit \d+\.\d% ops/s [\d.]+k? p99 [\d.]+(µs|ms|s) mem \d+\.\d% err \d+\.\d+%$"
)
BLOCKS = "▁▂▃▄▅▆▇█▉▊▋▌▍▎▏"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[str]:
    session = f"cachetop-fit-{uuid.uuid4().hex[:8]}"
    # A clean environment: the tmux server's global one may hold anything (another PYTHONPATH).
    env = f"env -i PATH=/usr/bin:/bin HOME={tmp_path} TERM=xterm-256color PYTHONPATH={ROOT}"
    command = f"{env} {CACHETOP} demo --interval 0.5 2>{tmp_path / 'err.log'}"
    tmux.start(session, command, (WIDTH, HEIGHT))
    yield session
    # Closing the terminal (SIGHUP) stops the demo's servers and workload as q would.
    tmux.kill(session)


def lines(session: str) -> list[str]:
    return (tmux.screen(session).splitlines() + [""] * HEIGHT)[:HEIGHT]


def wait_until_quiet(session: str) -> bool:
    """True once the header names cache-small within a second (a short poll, not a sleep)."""
    try:
        wait_until(lambda: "cache-small" in lines(session)[0], deadline_s=1.0, what="the view")
    except pytest.fail.Exception:
        return False
    return True


def footer_problems(footer: str) -> list[str]:
    if not footer.rstrip().endswith("▏^p palette"):
        return [f"footer without ^p palette at the right: {footer!r}"]
    items = [i for i in footer.rstrip().removesuffix("▏^p palette").strip().split("  ") if i]
    return [f"footer item cut or unknown: {i!r} in {footer!r}" for i in items if i not in FOOTER_ITEMS]


def header_problems(header: str) -> list[str]:
    return [] if HEADER_TIMING.search(header.rstrip()) else [f"header timing cut: {header!r}"]


def table_problems(screen: list[str], labels: list[str]) -> list[str]:
    """The table's header row shows every label; no horizontal scrollbar; no word at the edge."""
    problems = []
    heads = [line for line in screen if all(label in line for label in labels)]
    if not heads:
        problems.append(f"no header row with all of {labels}")
    for line in screen[2:-1]:
        body = line.rstrip()
        if body and set(body.strip()) <= set(BLOCKS):
            problems.append(f"horizontal scrollbar (table wider than the screen): {line!r}")
        elif len(body) >= WIDTH and body[-1].isalnum() and not set(body) & set(BLOCKS + "━│"):
            problems.append(f"a word runs into the edge: {line!r}")
    return problems


def wait_for(session: str, check: object, what: str, deadline_s: float = 20) -> list[str]:
    """The screen once `check(lines)` holds (a list of problems, empty when fine)."""
    found: list[list[str]] = []

    def ok() -> bool:
        screen = lines(session)
        found[:] = [screen, check(screen)]  # type: ignore[operator]
        return not found[1]

    try:
        wait_until(ok, deadline_s=deadline_s, what=what)
    except pytest.fail.Exception as exc:
        raise AssertionError(f"{exc}: {found[1]}\n" + "\n".join(found[0])) from None
    return found[0]


def test_demo_at_80x24_shows_no_cut_value(demo: str) -> None:
    overview = wait_for(
        demo,
        lambda s: (
            [n for n in ("cache-main", "sessions", "cache-small") if not any(n in x for x in s)]
            + header_problems(s[0])
            + footer_problems(s[-1])
        ),
        "the overview with every instance",
    )
    assert any("instance" in line and "status" in line for line in overview)

    # The detail view of cache-small (the rule on memory fires there), every tab.
    tmux.send_keys(demo, "/")
    wait_for(demo, lambda s: [] if any("filter by name" in x for x in s) else ["no filter"], "filter")
    tmux.send_keys(demo, "small")
    wait_for(demo, lambda s: [] if not any("cache-main" in x for x in s) else ["unfiltered"], "filtered")
    tmux.send_keys(demo, "Enter")  # keeps the filter; the table has the focus again
    wait_for(demo, lambda s: [] if "s Sort" in s[-1] else ["filter still focused"], "table focused")

    def opened() -> bool:
        """End (the last row: cache-small), Enter, until its view opens. An End that came before
        the filtered rows left the cursor elsewhere; an Enter on a group row folds it, and the
        next End + Enter unfolds it: the loop gets there within a few rounds."""
        if "cache-small" in lines(demo)[0]:
            return True
        tmux.send_keys(demo, "End", "Enter")
        return wait_until_quiet(demo)

    wait_until(opened, deadline_s=20, what="cache-small's view opened")
    detail = wait_for(
        demo,
        lambda s: (
            ([] if "cache-small" in s[0] else ["not in cache-small's view"])
            + header_problems(s[0])
            + ([] if SUMMARY.search(s[1].rstrip()) else [f"summary cut: {s[1]!r}"])
            + footer_problems(s[-1])
        ),
        "cache-small's detail view",
    )
    assert "Charts" in detail[2] and "Alerts" in detail[2], detail[2]

    # (tab, its table's labels, a text one of its rows shows once data is in)
    tabs = [
        ("Commands", [c.label for c in COMMAND_COLUMNS], "get"),
        ("Slowlog", [c.label for c in SLOWLOG_COLUMNS], ""),
        ("Clients", [c.label for c in CLIENT_COLUMNS], "(us)"),
        ("Server", [c.label for c in FACT_COLUMNS], "maxmemory-policy"),
        ("Hot keys", [c.label for c in key_columns(WIDTH) if c.label], "blob:"),
        ("Alerts", [c.label for c in ALERT_COLUMNS if c.label and c.key != "inst"], "FIRING"),
    ]
    for tab, labels, row in tabs:
        tmux.send_keys(demo, "Right")
        wait_for(
            demo,
            lambda s, labels=labels, row=row: (
                header_problems(s[0])
                + ([] if SUMMARY.search(s[1].rstrip()) else [f"summary cut: {s[1]!r}"])
                + ([] if any(row in line for line in s[3:-1]) else [f"no row with {row!r} yet"])
                + table_problems(s, labels)
                + footer_problems(s[-1])
            ),
            f"the {tab} tab fits",
        )

    # Alerts: the firing rule's row shows its last column ("what") with at least 12 cells.
    def alert_row(s: list[str]) -> list[str]:
        rows = [line for line in s if "FIRING" in line and "memory-high" in line]
        if not rows:
            return ["no FIRING memory-high row"]
        what = rows[0].rstrip().split("  ")[-1].strip()
        return [] if len(what) >= 12 or what.endswith("…") else [f"last column too narrow: {rows[0]!r}"]

    wait_for(demo, alert_row, "the firing alert's row", deadline_s=30)

    # Help: every key on one line each, and q (quit) on the screen.
    tmux.send_keys(demo, "?")
    help_screen = wait_for(
        demo,
        lambda s: [] if any(re.search(r"│ q +quit +│", line) for line in s) else ["q quit not in help"],
        "help with q",
    )
    assert "q quit · escape close" in help_screen[1], help_screen[1]
    assert any("pause / resume polling" in line for line in help_screen)


def test_footer_keeps_keys_whole() -> None:
    from cachetop.tui.widgets.footer import fitting

    widths = [("quit", 8), ("help", 8), ("toggle_pause", 9), ("refresh", 11), ("slower", 10), ("faster", 10)]
    assert fitting(widths, 100) == {0, 1, 2, 3, 4, 5}
    assert fitting(widths, 50) == {0, 1, 2, 3}  # the interval keys go first, as a pair
    assert fitting(widths, 30) == {0, 1, 2}
    assert fitting(widths, 10) == {0}

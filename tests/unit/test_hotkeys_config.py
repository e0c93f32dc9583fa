from pathlib import Path

import pytest

from cachetop.engine.config import load_config
from cachetop.engine.configfile import ConfigError
from cachetop.hotkeys.config import HotKeySettings, parse_size


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cachetop.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_issue() -> None:
    s = HotKeySettings()
    assert (s.monitor_on, s.monitor_off, s.omem_limit) == (1.0, 9.0, 8 * 1024 * 1024)
    assert (s.min_share, s.min_ops, s.separators) == (3.0, 5.0, ":")
    assert s.monitor_max_lines == 50_000
    assert s.monitor_stall == 0.5


def test_section_is_parsed(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            '[hotkeys]\nk = 5\nmonitor_on = "500ms"\nmonitor_off = "0s"\nomem_limit = "2MiB"\n'
            'min_share = 5\nseparators = ":/"\nbig_keys = false\nmonitor_max_lines = 0\n',
        )
    )
    s = cfg.sections["hotkeys"]
    assert s == HotKeySettings(
        k=5,
        monitor_on=0.5,
        monitor_off=0.0,
        omem_limit=2 * 1024 * 1024,
        min_share=5.0,
        separators=":/",
        big_keys=False,
        monitor_max_lines=0,
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[hotkeys]\nk = 5\nbogus = 1\n", ":3: unknown key 'bogus' in [hotkeys]"),
        ('[hotkeys]\n\nomem_limit = "lots"\n', ":3: omem_limit: 'lots' is not a size"),
        ("[hotkeys]\nomem_limit = 100\n", ":2: omem_limit must be at least 64KiB"),
        ("[hotkeys]\nmin_share = 150\n", ":2: min_share is a percentage (allowed: 0 to 100)"),
        ('[hotkeys]\nseparators = ""\n', ":2: separators must hold at least one character"),
        ("[hotkeys]\nk = 50\ncounters = 10\n", ":3: counters (10) must be at least k (50)"),
        ('[hotkeys]\nmonitor_on = "0s"\n', ":2: monitor_on must be positive"),
        ("[hotkeys]\nmonitor_max_lines = 500\n", ":2: monitor_max_lines must be 0 (no cap) or at least 1000"),
        ("[hotkeys]\nmonitor_max_lines = -1\n", ":2: monitor_max_lines must be at least 0, not -1"),
        (
            '[hotkeys]\nmonitor_stall = "100ms"\n',
            ":2: monitor_stall must be from 0.3s (the heartbeat comes every 0.1s) to 10s",
        ),
        ('[hotkeys]\nmonitor_stall = "1m"\n', ":2: monitor_stall must be from 0.3s"),
    ],
)
def test_mistakes_point_at_the_line(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}{message}")


def test_sizes() -> None:
    assert parse_size("8MiB") == 8388608
    assert parse_size("512 kib") == 524288
    assert parse_size("10MB") == 10_000_000
    assert parse_size(4096) == 4096


def test_a_retired_key_is_ignored_with_a_warning_at_its_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, '[hotkeys]\nk = 5\nmonitor_parse_budget = "4MiB"\n')
    with caplog.at_level("WARNING", logger="cachetop.config"):
        s = load_config(path).sections["hotkeys"]
    assert s == HotKeySettings(k=5)
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}:3: monitor_parse_budget is ignored and can be removed: a MONITOR phase now ends at"
        " monitor_max_lines (default 50000), which spares the server as well as cachetop"
    ]

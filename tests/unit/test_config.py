"""Each class of config mistake gets one line, FILE:LINE: what is wrong (what is allowed), and exit 2."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import pytest

from cachetop.cli import main
from cachetop.engine.config import (
    DEFAULT_TARGETS,
    find_config_file,
    load_config,
    parse_target,
    resolve_config,
)
from cachetop.engine.configfile import ConfigError, parse_duration

GOOD = """\
[settings]
interval = "500ms"
window = "10s"
timeout = 2

[[instance]]
name = "cache-1"
url = "redis://127.0.0.1:6379/2"
tags = ["prod", "eu"]

[[instance]]
name = "sessions"
url = "memcached://127.0.0.1:11211"
timeout = "1s"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cachetop.toml"
    path.write_text(textwrap.dedent(text))
    return path


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["config", "check", str(path)])
    captured = capsys.readouterr()
    return code, captured.err.strip()


def test_good_file_loads_with_every_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD)
    config = load_config(path)
    assert config.settings.interval == 0.5
    assert config.settings.window == 10.0
    assert config.settings.timeout == 2.0
    assert [i.name for i in config.instances] == ["cache-1", "sessions"]
    assert config.instances[0].target.db == 2
    assert config.instances[0].tags == ("prod", "eu")
    assert config.timeout_of(config.instances[1]) == 1.0
    assert config.interval_of(config.instances[1]) == 0.5
    code, err = check(path, capsys)
    assert code == 0 and err == ""


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("[settings]\ninterval = \n", 2, "invalid TOML"),
        ('[settings]\ninterval = "1s"\nwindw = "5s"\n', 3, "unknown key 'windw' in [settings] (allowed:"),
        (
            '[[instance]]\nname = "a"\nurl = "redis://h:1"\ntags = 3\n',
            4,
            "tags must be a list of strings, not a number",
        ),
        ('[[instance]]\nname = "a"\nurl = "http://h:1"\n', 3, "unknown scheme 'http'"),
        (
            '[[instance]]\nname = "a"\nurl = "redis://h:1"\n\n[[instance]]\nname = "a"\nurl = "redis://h:2"\n',
            6,
            "duplicate instance name 'a' (first used at",
        ),
        (
            '[[instance]]\nname = "a"\nurl = "redis://h:1"\npassword = "${CACHETOP_TEST_UNSET_VAR}"\n',
            4,
            "environment variable ${CACHETOP_TEST_UNSET_VAR} is not set",
        ),
        ('[settings]\ninterval = "fast"\n', 2, "'fast' is not a duration (allowed:"),
        ('[settings]\ninterval = "5s"\nwindow = "1s"\n', 3, "window (1s) must be at least interval (5s)"),
        ('[[instance]]\nname = "a"\n', 1, "has no 'url'"),
        ('[instance]\nname = "a"\n', 1, "write [[instance]]"),
        ('[[instance]]\nname = "a"\nurl = "redis://h:1"\nhotkeys = "always"\n', 4, "(allowed: auto, off,"),
    ],
    ids=[
        "syntax",
        "unknown-key",
        "wrong-type",
        "bad-url",
        "duplicate-name",
        "missing-env",
        "bad-duration",
        "window-lt-interval",
        "missing-url",
        "table-not-array",
        "bad-choice",
    ],
)
def test_each_mistake_is_one_line_with_file_and_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    line: int,
    fragment: str,
) -> None:
    monkeypatch.delenv("CACHETOP_TEST_UNSET_VAR", raising=False)
    path = write(tmp_path, text)
    code, err = check(path, capsys)
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"cachetop: {path}:{line}: "), err
    assert fragment in err


def test_env_vars_are_substituted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_HOST", "10.1.2.3")
    monkeypatch.setenv("CACHE_PW", "s3cret-value")
    path = write(
        tmp_path, '[[instance]]\nname = "a"\nurl = "redis://${CACHE_HOST}:7000"\npassword = "${CACHE_PW}"\n'
    )
    target = load_config(path).instances[0].target
    assert (target.host, target.port, target.password) == ("10.1.2.3", 7000, "s3cret-value")
    assert "s3cret" not in repr(target) and "s3cret" not in str(target)


def test_a_password_in_a_bad_url_is_not_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[[instance]]\nname = "a"\nurl = "redis://admin:hunter2-secret@h:1/notadb"\n')
    code, err = check(path, capsys)
    assert code == 2
    assert "hunter2-secret" not in err
    assert "redis://admin:***@h:1/notadb" in err


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379", ("redis", "127.0.0.1", 6379, 0, None, None, False)),
        ("redis://u:p%40ss@h:7000/3", ("redis", "h", 7000, 3, "u", "p@ss", False)),
        ("rediss://:pw@h:6380", ("redis", "h", 6380, 0, None, "pw", True)),
        ("valkey://h", ("valkey", "h", 6379, 0, None, None, False)),
        ("memcached://h:11212", ("memcached", "h", 11212, 0, None, None, False)),
    ],
)
def test_target_urls(url: str, expected: tuple[object, ...]) -> None:
    t = parse_target(url)
    assert (t.kind, t.host, t.port, t.db, t.username, t.password, t.tls) == expected


def test_target_names_are_host_port_and_redacted() -> None:
    t = parse_target("redis://u:pw1234@h:7000/3")
    assert t.address == "h:7000"
    assert t.redacted_url == "redis://u:***@h:7000/3"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("2s", 2.0), ("5m", 300.0), ("1h", 3600.0), ("1h30m", 5400.0), (3, 3.0)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    xdg = tmp_path / "xdg"
    (xdg / "cachetop").mkdir(parents=True)
    (xdg / "cachetop" / "config.toml").write_text(GOOD)
    env = {"XDG_CONFIG_HOME": str(xdg)}
    assert find_config_file(None, env) == str(xdg / "cachetop" / "config.toml")
    (tmp_path / "cachetop.toml").write_text(GOOD)
    assert find_config_file(None, env) == "cachetop.toml"
    env["CACHETOP_CONFIG"] = "/from/env.toml"
    assert find_config_file(None, env) == "/from/env.toml"
    assert find_config_file("explicit.toml", env) == "explicit.toml"


def test_defaults_when_no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHETOP_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    config = resolve_config([], None)
    assert [i.target.redacted_url for i in config.instances] == list(DEFAULT_TARGETS)
    assert [i.name for i in config.instances] == ["127.0.0.1:6379", "127.0.0.1:11211"]


def test_targets_on_the_command_line_win(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    config = resolve_config(["redis://10.0.0.1:6379", "memcached://10.0.0.2:11211"], str(path))
    assert [i.name for i in config.instances] == ["10.0.0.1:6379", "10.0.0.2:11211"]
    assert config.settings.interval == 0.5  # settings still come from the named file
    with pytest.raises(ConfigError, match="is given twice"):
        resolve_config(["redis://h:1", "redis://h:1"], None)


def test_line_numbers_for_dotted_keys_sub_tables_and_quotes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "[settings]\n"  # 1
        "interval = 1\n"  # 2
        "[[instance]]\n"  # 3
        'name = "a"\n'  # 4
        'password = \'x"""y\'\n'  # 5: a triple quote inside a one-line string
        'url = "redis://h:1"\n'  # 6
        "[[instance]]\n"  # 7
        'name = "b"\n'  # 8
        'url = "redis://h:2"\n'  # 9
        "tls_verify.x = 1\n"  # 10: a dotted key
    )
    path = write(tmp_path, text)
    code, err = check(path, capsys)
    assert code == 2
    assert err.startswith(f"cachetop: {path}:10: tls_verify must be true or false"), err
    path.write_text(text.replace("tls_verify.x = 1\n", "[instance.extra]\nfoo = 1\n"))
    code, err = check(path, capsys)
    assert err.startswith(f"cachetop: {path}:10: unknown key 'extra' in [instance]"), err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # An array left open: tomllib stops at the next header, or at the end of the file.
        ('a = 1\ntags = ["x",\n  "y"\n\n[b]\nc = 2\n', "2: invalid TOML: this list is never closed (add ])"),
        ("a = 1\nx = [1,\n2,\n", "2: invalid TOML: this list is never closed (add ])"),
        ('a = 1\ns = """abc\n\n', '2: invalid TOML: this string is never closed (add """)'),
        ("t = {a = 1\n", "1: invalid TOML: this inline table is never closed (add })"),
        # A list that IS closed later: the bad value's own line, not where the list opened.
        ("x = [ 1,\n 2,\n bad ]\n", "3: invalid TOML: Invalid value (see https://toml.io)"),
        # Brackets inside strings and comments do not count.
        ('x = [ "]", # ]\n  "[" ,\n bad ]\n', "3: invalid TOML: Invalid value (see https://toml.io)"),
    ],
)
def test_syntax_errors_point_at_the_line_to_fix(text: str, expected: str) -> None:
    from cachetop.engine.configfile import syntax_error_message

    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        assert syntax_error_message(text, str(exc)).startswith(expected)
    else:
        pytest.fail("the text parsed")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "infinity", float("nan"), float("inf"), "1e400"])
def test_durations_are_finite(value: object) -> None:
    with pytest.raises(ValueError, match="is not a finite duration"):
        parse_duration(value)


def test_every_default_is_inside_its_bounds() -> None:
    """The defaults a user gets without writing a key must pass the check a written key gets."""
    from cachetop.alerts.presets import AlertSettings
    from cachetop.alerts.rules import DEFAULT_COOLDOWN
    from cachetop.engine.config import Settings
    from cachetop.engine.configfile import DURATION_BOUNDS, bounds_for
    from cachetop.hotkeys.config import HotKeySettings

    settings, hot, alerts = Settings(), HotKeySettings(), AlertSettings()
    defaults = {
        "interval": settings.interval,
        "window": settings.window,
        "timeout": settings.timeout,
        "cooldown": DEFAULT_COOLDOWN,
        "instance_down_for": alerts.instance_down_for,
        "delivery_deadline": alerts.delivery_deadline,
        **{name: getattr(hot, name) for name in ("monitor_on", "monitor_off", "watch_on", "watch_off")},
        "stampede_window": hot.stampede_window,
    }
    for name, seconds in defaults.items():
        assert name in DURATION_BOUNDS
        assert bounds_for(name).problem(seconds) is None, (name, seconds)


def test_a_hostile_name_in_an_error_is_escaped_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        '[[instance]]\nname = "x\\u001b[2J"\nurl = "redis://h:1"\n\n'
        '[[instance]]\nname = "x\\u001b[2J"\nurl = "redis://h:2"\n',
    )
    code, err = check(path, capsys)
    assert code == 2
    assert "duplicate instance name 'x\\x1b[2J'" in err
    assert "\x1b" not in err

"""Issue 12, configuration: secrets never leak through URL parsing, nonsense settings are refused,
config files are read safely, names are escaped once. Every test runs the installed `cachetop`
console script against real servers and real files, as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_py

from cachetop.servers import LocalServer, free_port

# RFC 3986 gen-delims and sub-delims, "%", and what a URL cannot hold unencoded (space, quote,
# backslash, braces...): each one inside a password, where people type them without encoding.
RESERVED = [*":/?#[]@!$&'()*+,;=%", " ", '"', "\\", "<", ">", "{", "}", "|", "^", "`", "\t"]
IDS = [f"{ord(c):02x}" for c in RESERVED]


def secret_with(char: str) -> str:
    return f"Hunter2{char}secretX"


def cachetop(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("cachetop", path=str(Path(sys.executable).parent)) or "cachetop"
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, env=full_env)


def assert_no_secret(result: subprocess.CompletedProcess[str]) -> None:
    everything = result.stdout + result.stderr
    # Neither half of the password, so a password cut at its reserved character cannot leak either.
    assert "Hunter2" not in everything, everything
    assert "secretX" not in everything, everything
    assert "Traceback" not in everything, everything


# --- secrets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", RESERVED, ids=IDS)
def test_a_password_with_a_reserved_character_never_leaks(char: str, tmp_path: Path) -> None:
    secret = secret_with(char)
    # From the command line, in the "bad port" error the issue found.
    cli = cachetop("snapshot", f"redis://:{secret}@127.0.0.1:notaport")
    assert cli.returncode == 2
    assert cli.stderr.startswith("cachetop: target: 'redis://:***@127.0.0.1:notaport' has a bad port"), (
        cli.stderr
    )
    assert_no_secret(cli)
    # Through ${ENV} in a config file: the error names the file and line, never the value.
    config = tmp_path / "cachetop.toml"
    config.write_text('[[instance]]\nname = "a"\nurl = "redis://:${CACHE_PW}@127.0.0.1:0"\n')
    checked = cachetop("config", "check", str(config), env={"CACHE_PW": secret})
    assert checked.returncode == 2
    assert checked.stderr == (
        f"cachetop: {config}:3: 'redis://:***@127.0.0.1:0': port 0 is out of range (allowed: 1-65535)\n"
    )
    assert_no_secret(checked)


def test_passwords_with_every_reserved_character_reach_no_output(tmp_path: Path) -> None:
    """Valid URLs whose servers are down: the DOWN reason, the JSON, the debug log and
    `config check` show the instances, never a password."""
    dead = [free_port() for _ in RESERVED]
    env = {f"PW_{i}": secret_with(c) for i, c in enumerate(RESERVED)}
    env["CACHETOP_LOG"] = "debug"
    config = tmp_path / "cachetop.toml"
    config.write_text(
        f'[settings]\nstate_dir = "{tmp_path / "state"}"\n'
        + "".join(
            f'[[instance]]\nname = "i{i}"\nurl = "redis://user:${{PW_{i}}}@127.0.0.1:{port}"\n'
            for i, port in enumerate(dead)
        )
    )
    checked = cachetop("config", "check", str(config), env=env)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.count("redis://user:***@127.0.0.1:") == len(RESERVED)
    assert_no_secret(checked)
    snap = cachetop("snapshot", "--json", "--window", "0.2", "--timeout", "0.5", "-c", str(config), env=env)
    assert snap.returncode == 1
    doc = json.loads(snap.stdout)
    assert [(i["status"], i["error"]) for i in doc["instances"]] == [("down", "connection refused")] * len(
        RESERVED
    )
    assert_no_secret(snap)
    # The same URLs typed on the command line, percent-encoding nothing.
    urls = [f"redis://user:{secret_with(c)}@127.0.0.1:{port}" for c, port in zip(RESERVED, dead, strict=True)]
    cli = cachetop("snapshot", "--json", "--window", "0.2", "--timeout", "0.5", *urls, env=env)
    assert cli.returncode == 1, cli.stderr
    assert [i["name"] for i in json.loads(cli.stdout)["instances"]] == [f"127.0.0.1:{p}" for p in dead]
    assert_no_secret(cli)


def test_a_password_with_reserved_characters_logs_in(make_redis) -> None:  # type: ignore[no-untyped-def]
    """Not only redacted: the password cut at the last "@" is the one the server checks."""
    password = "p@ss:w/rd?#[x]%zz secret"
    server = make_redis("--requirepass", password)
    result = cachetop("snapshot", "--json", "--window", "0.2", f"redis://:{password}@127.0.0.1:{server.port}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["instances"][0]["status"] == "up"
    assert password not in result.stdout + result.stderr


# --- nonsense settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('interval = "nan"', 'interval = "nan" is not a finite duration: allowed 0.1s … 1h'),
        ("interval = nan", "interval = nan is not a finite duration: allowed 0.1s … 1h"),
        ("interval = 1e-9", "interval = 1e-09 is too short: allowed 0.1s … 1h"),
        ("interval = 1e400", "interval = inf is not a finite duration: allowed 0.1s … 1h"),
        ('interval = "-1s"', "interval: '-1s' is not a duration"),
        ("interval = -1", "interval = -1 must not be negative: allowed 0.1s … 1h"),
        ('window = "2h"', 'window = "2h" is too long: allowed 0.1s … 1h'),
        ('timeout = "1ms"', 'timeout = "1ms" is too short: allowed 0.1s … 5m'),
        ("timeout = 0", "timeout must be positive: allowed 0.1s … 5m"),
    ],
)
def test_nonsense_durations_are_refused_with_the_bounds(tmp_path: Path, setting: str, message: str) -> None:
    config = tmp_path / "cachetop.toml"
    config.write_text(f'[[instance]]\nname = "a"\nurl = "redis://h:1"\n\n[settings]\n{setting}\n')
    result = cachetop("config", "check", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"cachetop: {config}:6: {message}"), result.stderr


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            '[[instance]]\nname = "b"\nurl = "redis://h:2"\ninterval = "10ms"',
            'interval = "10ms" is too short',
        ),
        (
            '[[rule]]\nname = "r"\nmetric = "hit_ratio"\nop = "<"\nthreshold = 1\ncooldown = "inf"',
            'cooldown = "inf" is not a finite duration: allowed 1s … 7d',
        ),
        ('[hotkeys]\nmonitor_on = "2h"', 'monitor_on = "2h" is too long: allowed 0.1s … 1h'),
    ],
)
def test_every_duration_setting_has_bounds(tmp_path: Path, section: str, message: str) -> None:
    config = tmp_path / "cachetop.toml"
    config.write_text(f'[[instance]]\nname = "a"\nurl = "redis://h:1"\n\n{section}\n')
    result = cachetop("config", "check", str(config))
    assert result.returncode == 2
    line = section.count("\n") + 5
    assert result.stderr.startswith(f"cachetop: {config}:{line}: {message}"), result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--interval", "1e-9"), "--interval 1e-9 is too short: allowed 0.1s … 1h"),
        (("--interval", "nan"), "--interval nan is not a finite duration: allowed 0.1s … 1h"),
        (("--timeout", "inf"), "--timeout inf is not a finite duration: allowed 0.1s … 5m"),
        (("--window", "0"), "--window must be positive: allowed 0.1s … 1h"),
        (("--window", "2h"), "--window 2h is too long: allowed 0.1s … 1h"),
    ],
)
def test_nonsense_duration_flags_are_refused(flags: tuple[str, str], message: str) -> None:
    result = cachetop("snapshot", *flags, "redis://127.0.0.1:1")
    assert (result.returncode, result.stderr) == (2, f"cachetop: {message}\n")


def test_hotkeys_duration_flag_has_bounds() -> None:
    result = cachetop("hotkeys", "--duration", "1e-9", "redis://127.0.0.1:1")
    assert (result.returncode, result.stderr) == (
        2,
        "cachetop: --duration 1e-9 is too short: allowed 0.25s … 1d\n",
    )


def test_a_tiny_interval_sends_the_server_nothing(redis: LocalServer, tmp_path: Path) -> None:
    """interval = 1e-9 once sent 47,524 commands in 8 s to an idle Redis; now the daemon refuses
    to start, and the server sees no command from it."""
    config = tmp_path / "cachetop.toml"
    config.write_text(
        f'[settings]\ninterval = 1e-9\nstate_dir = "{tmp_path / "state"}"\n'
        f'[[instance]]\nname = "r"\nurl = "{redis.url}"\n'
    )
    client = redis_py.Redis(port=redis.port)
    before = client.info("stats")["total_commands_processed"]
    result = cachetop("daemon", "-c", str(config), timeout=15)
    after = client.info("stats")["total_commands_processed"]
    client.close()
    assert result.returncode == 2
    assert f"{config}:2: interval = 1e-09 is too short: allowed 0.1s … 1h" in result.stderr
    assert after - before == 1  # only our own first INFO


# --- ports and databases --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1:0", "'redis://127.0.0.1:0': port 0 is out of range (allowed: 1-65535)"),
        ("memcached://h:65536", "'memcached://h:65536': port 65536 is out of range (allowed: 1-65535)"),
        ("redis-cluster://a:1,b:0", "'redis-cluster://a:1,b:0': port 0 is out of range (allowed: 1-65535)"),
        ("redis://h:1/-1", "'redis://h:1/-1': the path must be a database number like /0, 0-65535"),
        ("redis://h:1/1.5", "'redis://h:1/1.5': the path must be a database number like /0, 0-65535"),
        ("redis://h:1/70000", "'redis://h:1/70000': database 70000 is out of range (allowed: 0-65535)"),
    ],
)
def test_bad_ports_and_databases_are_refused(url: str, message: str) -> None:
    result = cachetop("snapshot", url)
    assert result.returncode == 2
    assert result.stderr.startswith(f"cachetop: target: {message}"), result.stderr


def test_port_zero_in_a_config_and_for_evict(redis: LocalServer, tmp_path: Path) -> None:
    """Port 0 once became 6379: an evict could act on another server than the one named."""
    config = tmp_path / "cachetop.toml"
    config.write_text(
        f'[settings]\nstate_dir = "{tmp_path}"\n[[instance]]\nname = "a"\nurl = "redis://h:0"\n'
    )
    checked = cachetop("config", "check", str(config))
    assert (
        checked.stderr == f"cachetop: {config}:5: 'redis://h:0': port 0 is out of range (allowed: 1-65535)\n"
    )
    evict = cachetop("evict", "--key", "k", "--yes", "redis://127.0.0.1:0")
    assert evict.returncode == 2
    assert "port 0 is out of range" in evict.stderr


def _db_config(tmp_path: Path) -> Path:
    config = tmp_path / "cachetop.toml"
    config.write_text(f'[settings]\nstate_dir = "{tmp_path / "state"}"\n')
    return config


@pytest.mark.parametrize(
    ("extra", "db", "reason"),
    [
        ((), 99, "db 99 does not exist: this server has 16 databases (0-15)"),
        (("--databases", "4"), 4, "db 4 does not exist: this server has 4 databases (0-3)"),
        # A managed Redis may disable CONFIG: SELECT's refusal still decides.
        (
            ("--rename-command", "CONFIG", ""),
            16,
            "db 16 does not exist on this server (SELECT 16: DB index is out of range)",
        ),
    ],
    ids=["default", "databases-4", "config-disabled"],
)
def test_a_database_beyond_the_servers_range_is_down_and_evict_refuses(
    make_redis,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    extra: tuple[str, ...],
    db: int,
    reason: str,
) -> None:
    server = make_redis(*extra)
    client = redis_py.Redis(port=server.port)
    client.set("k", "v")
    url = f"redis://127.0.0.1:{server.port}/{db}"
    snap = cachetop("snapshot", "--json", "--window", "0.2", url)
    assert snap.returncode == 1
    inst = json.loads(snap.stdout)["instances"][0]
    assert (inst["status"], inst["error"]) == ("down", reason)
    evict = cachetop("evict", "-c", str(_db_config(tmp_path)), "--key", "k", "--yes", url)
    assert evict.returncode == 1
    assert f"{url}: {reason}; nothing was done" in evict.stderr
    assert client.get("k") == b"v"  # db 0 was not touched
    client.close()


# --- reading config files -------------------------------------------------------------------------


def test_an_unclosed_list_is_reported_where_it_opened(tmp_path: Path) -> None:
    config = tmp_path / "cachetop.toml"
    config.write_text(
        '[settings]\ninterval = "1s"\n\n[[instance]]\nname = "a"\nurl = "redis://h:1"\n'
        'tags = ["prod",\n  "eu"\n\n[[instance]]\nname = "b"\nurl = "redis://h:2"\n'
    )
    result = cachetop("config", "check", str(config))
    assert result.returncode == 2
    assert result.stderr == (
        f"cachetop: {config}:7: invalid TOML: this list is never closed (add ]); the parser stopped at "
        "line 10: Unclosed array (see https://toml.io)\n"
    )
    config.write_text('[settings]\nwindow = "5s"\n[[instance]]\nname = "a"\ntags = [\n  "x",\n')
    at_end = cachetop("config", "check", str(config))
    assert at_end.stderr.startswith(f"cachetop: {config}:5: invalid TOML: this list is never closed"), at_end


def test_a_fifo_a_directory_and_a_device_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)  # nobody ever writes: opening it for reading the usual way blocks forever
    result = cachetop("config", "check", str(fifo), timeout=20)
    assert result.returncode == 2
    assert result.stderr == (
        f"cachetop: {fifo}: this is a named pipe (FIFO), not a regular file (a config must be a TOML file)\n"
    )
    daemon = cachetop("daemon", "-c", str(fifo), timeout=20)
    assert daemon.returncode == 2 and "named pipe (FIFO)" in daemon.stderr
    for path, kind in ((tmp_path, "a directory"), (Path("/dev/zero"), "a character device")):
        refused = cachetop("config", "check", str(path), timeout=20)
        assert refused.stderr == (
            f"cachetop: {path}: this is {kind}, not a regular file (a config must be a TOML file)\n"
        )


# --- names with control characters ---------------------------------------------------------------

HOSTILE = "evil\x1b[31m\u202e"  # ESC [31m (red) and a right-to-left override
SHOWN = "evil\\x1b[31m\\u202e"  # how every path shows it: escaped once


def _hostile_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "cachetop.toml"
    config.write_text(
        f'[settings]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[[instance]]\nname = "evil\\u001b[31m\\u202e"\nurl = "{url}"\ntags = ["t\\u0007ag"]\n'
    )
    return config


def assert_escaped_once(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, repr(text)
    assert SHOWN in text, text
    assert "\\\\x1b" not in text, text  # not escaped twice


def test_config_check_and_the_snapshot_table_escape_names_once(redis: LocalServer, tmp_path: Path) -> None:
    config = _hostile_config(tmp_path, redis.url)
    checked = cachetop("config", "check", str(config))
    assert checked.returncode == 0, checked.stderr
    assert_escaped_once(checked.stdout)
    assert "tags: t\\x07ag" in checked.stdout
    table = cachetop("snapshot", "-c", str(config), "--window", "0.2")
    assert table.returncode == 0, table.stderr
    assert_escaped_once(table.stdout)


def test_the_poll_log_escapes_names_once(tmp_path: Path) -> None:
    config = _hostile_config(tmp_path, f"redis://127.0.0.1:{free_port()}")
    result = cachetop(
        "snapshot", "-c", str(config), "--window", "0.2", "--timeout", "0.5", env={"CACHETOP_LOG": "info"}
    )
    assert result.returncode == 1
    assert f"INFO cachetop.poller: {SHOWN}: down (connection refused)" in result.stderr, result.stderr
    assert_escaped_once(result.stderr)
    assert_escaped_once(result.stdout)  # the table's name and its "down: connection refused" note

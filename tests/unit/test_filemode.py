"""The config file check: secrets written in a file others can read give one warning, without the secret."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from cachetop.engine.config import load_config
from cachetop.util.filemode import secret_file_warning

TOML = """
[[instance]]
name = "cache"
url = "redis://app:{password}@127.0.0.1:6379"
"""


def write(tmp_path: Path, mode: int, password: str = "hunter2-secret") -> Path:
    path = tmp_path / "cachetop.toml"
    path.write_text(TOML.format(password=password))
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize(("mode", "who"), [(0o644, "everyone"), (0o640, "its group"), (0o604, "everyone")])
def test_readable_file_with_a_literal_secret_warns(tmp_path: Path, mode: int, who: str) -> None:
    path = write(tmp_path, mode)
    assert secret_file_warning(path, ["hunter2-secret"]) == (
        f"{path}: holds passwords or tokens but is readable by {who} (mode {mode:04o}); "
        f"run `chmod 600 {path}`, or move the secrets to ${{ENV}} variables"
    )


def test_private_file_or_secrets_from_env_do_not_warn(tmp_path: Path) -> None:
    assert secret_file_warning(write(tmp_path, 0o600), ["hunter2-secret"]) is None
    # A secret that is not in the file (it came from ${ENV}) is not the file's problem.
    assert secret_file_warning(write(tmp_path, 0o644, "${PW}"), ["from-the-env"]) is None
    assert secret_file_warning(tmp_path / "missing.toml", ["x"]) is None


def test_load_config_logs_the_warning_once_and_never_the_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, 0o644)
    with caplog.at_level(logging.WARNING, logger="cachetop.config"):
        load_config(path)
    assert [r.getMessage() for r in caplog.records] == [secret_file_warning(path, ["hunter2-secret"])]
    assert "hunter2" not in caplog.text
    caplog.clear()
    os.chmod(path, 0o600)
    with caplog.at_level(logging.WARNING, logger="cachetop.config"):
        load_config(path)
    assert caplog.records == []

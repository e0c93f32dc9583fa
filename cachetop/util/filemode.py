"""Warn when a config file that holds secrets can be read by other users.

Only secrets written into the file itself count: a password that comes from ${ENV} is not in
the file, so a world-readable file that only names variables is fine.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from cachetop.engine.configfile import ConfigError, read_config_text

log = logging.getLogger("cachetop.config")


def secret_file_warning(path: str | Path, secrets: Iterable[str]) -> str | None:
    """The warning to show, or None when the file is private or holds no secret literally."""
    try:
        mode = os.stat(path).st_mode
        if not mode & (stat.S_IRGRP | stat.S_IROTH):
            return None
        text = read_config_text(path)  # a regular file only: never blocks on a FIFO
    except (OSError, ConfigError):
        return None
    if not any(secret and secret in text for secret in secrets):
        return None
    who = "everyone" if mode & stat.S_IROTH else "its group"
    return (
        f"{path}: holds passwords or tokens but is readable by {who} (mode {stat.S_IMODE(mode):04o}); "
        f"run `chmod 600 {path}`, or move the secrets to ${{ENV}} variables"
    )


_warned: set[str] = set()


def warn_if_readable(path: str | Path, secrets: Iterable[str]) -> None:
    """Logs the warning once per file and process (a command may load its config twice)."""
    message = secret_file_warning(path, secrets)
    if message and message not in _warned:
        _warned.add(message)
        log.warning("%s", message)

"""The last keyspace report of each instance, kept in the state dir so a view can show it (with its
age) without walking the keyspace again, and so `expiry_cliff_keys` has something to read.

One file per instance, `<state_dir>/keyspace/<hash of the name>.json`, private to the user (key
names are data), written whole or not at all (a temporary file, then a rename).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

DIRECTORY = "keyspace"


def report_path(state_dir: Path, instance_name: str) -> Path:
    digest = hashlib.sha256(instance_name.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return Path(state_dir) / DIRECTORY / f"{digest}.json"


def save_report(state_dir: Path, report_json: dict[str, Any], *, now: float | None = None) -> Path:
    """Keeps one instance's report (one element of the JSON's "instances"); returns the file."""
    path = report_path(state_dir, str(report_json["name"]))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = {"saved_at": time.time() if now is None else now, "report": report_json}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(body, out)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def load_report(state_dir: Path, instance_name: str) -> tuple[dict[str, Any], float] | None:
    """(report JSON, saved_at Unix time) of the instance's last analysis, or None (none, unreadable)."""
    try:
        body = json.loads(report_path(state_dir, instance_name).read_text(encoding="utf-8"))
        report, saved_at = body["report"], float(body["saved_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(report, dict) or report.get("name") != instance_name:
        return None
    return report, saved_at

"""Who did what to which cache, and the read-only guard every destructive action passes first.

The audit log is JSON lines in `<state_dir>/audit.jsonl`, one line per action (dry runs and
refusals too), appended with a single write so concurrent cachetop processes never interleave
a line. Keys are stored escaped and truncated (safe_text.display_key): the log is read in
terminals, and a megabyte key must not make a megabyte line. Secrets are scrubbed last.

A destructive action writes an intent line before its first change and an outcome line after
its last; an action whose intent cannot be written (disk full, read-only file system...) does
not start. A write that only partly lands (a nearly full disk) is undone, so the log stays one
JSON object per line, and reported as AuditError.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cachetop.engine.config import InstanceConfig
from cachetop.util.redact import scrub
from cachetop.util.safe_text import display_key

AUDIT_FILE = "audit.jsonl"
KEYS_LOGGED = 20  # a list of keys is logged up to this many, with the total beside it
KEY_LOG_LEN = 256


class ReadOnlyError(Exception):
    """A destructive action was refused; the message says why and how to allow it."""


class AuditError(Exception):
    """The audit log cannot be written; the message names the file and the reason, one line."""


def check_writable(inst: InstanceConfig, *, read_only: bool, action: str, config_path: str | None) -> None:
    """Raises ReadOnlyError when the run (--read-only) or the instance (read_only = true) forbids it."""
    if read_only:
        raise ReadOnlyError(
            f"refused: cachetop runs with --read-only, so {action} on {display_key(inst.name, 60)} "
            "is not allowed (run without --read-only to act)"
        )
    if inst.read_only:
        where = f" in {config_path}" if config_path else ""
        raise ReadOnlyError(
            f"refused: instance {display_key(inst.name, 60)} is read_only = true{where}, "
            f"so {action} is not allowed (set read_only = false to act on it)"
        )


def _who() -> str:
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def key_fields(keys: Iterable[bytes]) -> dict[str, Any]:
    keys = list(keys)
    return {
        "keys": [display_key(k, KEY_LOG_LEN) for k in keys[:KEYS_LOGGED]],
        "key_count": len(keys),
    }


class AuditLog:
    def __init__(self, state_dir: Path, *, source: str = "cli") -> None:
        self.path = Path(state_dir) / AUDIT_FILE
        self.source = source

    def record(self, action: str, inst: InstanceConfig | None, **fields: Any) -> dict[str, Any]:
        """Appends one line and returns it. `fields` say what and how many (matched, evicted...)."""
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "user": _who(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "source": self.source,
            "action": action,
        }
        if inst is not None:
            entry["instance"] = display_key(inst.name, 120)
            entry["target"] = inst.target.redacted_url
        entry.update(fields)
        line = scrub(json.dumps(entry, ensure_ascii=True, default=str)) + "\n"
        try:
            self._append(line.encode())
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise AuditError(
                f"cannot write the audit log {self.path}: {reason} "
                "(free space there, or set state_dir to a writable place)"
            ) from None
        return entry

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, data)
            if written != len(data):
                # A short write (the disk filled mid-line): take the fragment back, unless another
                # process appended after it, so every line stays one whole JSON object.
                end = os.lseek(fd, 0, os.SEEK_CUR)
                if os.fstat(fd).st_size == end:
                    os.ftruncate(fd, end - written)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        finally:
            os.close(fd)

    def entries(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


def pattern_field(pattern: bytes) -> Mapping[str, str]:
    return {"pattern": display_key(pattern, KEY_LOG_LEN)}

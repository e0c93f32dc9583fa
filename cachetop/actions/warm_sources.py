"""The built-in warmers: `file` (JSON lines) and `hotkeys-replay` (hot keys through a loader)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from cachetop.actions.warm import check_ttl
from cachetop.engine.configfile import parse_duration
from cachetop.plugins import Warmer, WarmItem

FILE_FORMAT = '{"key": "...", "value": "..." | "value_b64": "...", "ttl": seconds | null}'


def _ttl_option(options: Mapping[str, str], name: str = "ttl") -> float | None:
    raw = options.get(name)
    if raw in (None, ""):
        return None
    try:
        return check_ttl(parse_duration(str(raw)), f"option {name}={raw}")
    except ValueError as exc:
        text = str(exc)
        raise ValueError(text if text.startswith("option ") else f"option {name}={raw!r}: {text}") from None


class FileWarmer:
    """JSON lines of key, value and ttl (option path=FILE)."""

    name: ClassVar[str] = "file"
    description: ClassVar[str] = "JSON lines of key, value and ttl seconds (--file FILE)"

    def __init__(self, options: Mapping[str, str]) -> None:
        path = options.get("path")
        if not path:
            raise ValueError("the file strategy needs a file: --file FILE (JSON lines: " + FILE_FORMAT + ")")
        self.path = Path(path)
        self.items = self._parse()
        self.total = len(self.items)
        self._by_key = {item.key: item.value for item in self.items}  # as a loader: values by key

    def _parse(self) -> list[WarmItem]:
        # Read it all before writing anything, so a bad line 40,000 does not leave a half warm-up.
        items: list[WarmItem] = []
        with self.path.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if raw.strip():
                    items.append(self._item(raw, lineno))
        return items

    def _item(self, raw: bytes, lineno: int) -> WarmItem:
        where = f"{self.path}:{lineno}"
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            # The decoder's own message, whole (it is short and fixed); its "line 1 column 9" would
            # be wrong here (the file's line is `where`), so only the column is kept.
            problem = f"{exc.msg} at column {exc.colno}"
            raise ValueError(f"{where}: not JSON ({problem}; each line is {FILE_FORMAT})") from None
        except ValueError:  # UnicodeDecodeError: bytes that are no text
            raise ValueError(f"{where}: not UTF-8 text (each line is {FILE_FORMAT})") from None
        if not isinstance(row, dict) or not isinstance(row.get("key"), str) or not row["key"]:
            raise ValueError(f'{where}: needs a non-empty string "key" (each line is {FILE_FORMAT})')
        if "value_b64" in row:
            try:
                value = base64.b64decode(str(row["value_b64"]), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"{where}: value_b64 is not base64") from None
        elif isinstance(row.get("value"), str):
            value = row["value"].encode()
        else:
            raise ValueError(f'{where}: needs a string "value" or "value_b64" ({FILE_FORMAT})')
        ttl = row.get("ttl")
        if ttl is not None:
            try:
                check_ttl(ttl, f"{where}: ttl")
            except ValueError as exc:
                raise ValueError(f"{exc}; or null for no expiry") from None
        unknown = set(row) - {"key", "value", "value_b64", "ttl"}
        if unknown:
            raise ValueError(
                f"{where}: unknown field {sorted(unknown)[0]!r} (allowed: key, value, value_b64, ttl)"
            )
        return WarmItem(row["key"].encode(), float(ttl) if ttl is not None else None, value)

    def plan(self) -> Iterator[WarmItem]:
        return iter(self.items)

    def fetch(self, item: WarmItem) -> bytes | None:
        """The item's own value, or (as the loader of hotkeys-replay or warm --predict) the value
        the file gives for that key: None for a key the file does not have."""
        return item.value if item.value is not None else self._by_key.get(item.key)


def read_hot_keys(path: Path) -> list[bytes]:
    """Keys from `cachetop hotkeys --json` output, or one key per line. Keys that `hotkeys` had to
    escape or cut (backslash escapes, a trailing …) cannot be recovered, so they are skipped."""
    text = path.read_text(encoding="utf-8")
    keys: list[str] = []
    try:
        data: Any = json.loads(text)
    except ValueError:
        keys = [line.rstrip("\r") for line in text.splitlines() if line.strip()]
    else:
        for inst in data.get("instances", []) if isinstance(data, dict) else []:
            keys.extend(str(k.get("key", "")) for k in inst.get("keys", []))
    return [k.encode() for k in keys if k and "\\" not in k and not k.endswith("…")]


class HotKeysReplayWarmer:
    """Re-fetches recent hot keys through a loader warmer (options: loader=NAME, from=FILE, ttl)."""

    name: ClassVar[str] = "hotkeys-replay"
    description: ClassVar[str] = "re-fetch recent hot keys through a loader plugin (loader=NAME)"

    def __init__(
        self, options: Mapping[str, str], *, hot_keys: Sequence[bytes] = (), loader: Warmer | None = None
    ) -> None:
        self.options = dict(options)
        self.ttl = _ttl_option(options)
        keys = list(hot_keys)
        if not keys and options.get("from"):
            keys = read_hot_keys(Path(options["from"]))
        self.hot_keys = list(dict.fromkeys(keys))
        self.loader = loader
        self.total = len(self.hot_keys)

    def plan(self) -> Iterator[WarmItem]:
        if self.loader is None:
            raise ValueError("hotkeys-replay needs a loader: --option loader=NAME (a warmer plugin)")
        return (WarmItem(k, self.ttl) for k in self.hot_keys)

    def fetch(self, item: WarmItem) -> bytes | str | None:
        assert self.loader is not None
        return self.loader.fetch(item)


def create_warmer(
    registry: Any, name: str, options: Mapping[str, str], hot_keys: Sequence[bytes] = ()
) -> Warmer:
    """A warmer by name; hotkeys-replay gets its loader (another warmer) and the hot keys."""
    if name != HotKeysReplayWarmer.name:
        return registry.create_warmer(name, options)
    loader_name = options.get("loader")
    if not loader_name:
        raise ValueError("hotkeys-replay needs a loader: --option loader=NAME (one of the warmer plugins)")
    if loader_name == name:
        raise ValueError("hotkeys-replay cannot be its own loader")
    loader = registry.create_warmer(loader_name, options)
    replay = HotKeysReplayWarmer(options, hot_keys=hot_keys, loader=loader)
    if not replay.hot_keys:
        raise ValueError(
            "hotkeys-replay has no hot keys: --option from=FILE (`cachetop hotkeys --json` output)"
        )
    return replay

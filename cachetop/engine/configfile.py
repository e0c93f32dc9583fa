"""Reading TOML with line numbers: every mistake becomes one `FILE:LINE: message` line.

tomllib gives values but no positions, so `LineLocator` scans the text once for table headers
and `key =` lines and maps each key path to the line it was written on. Errors are raised as
ConfigError and printed by the CLI, which exits with status 2.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

# Re-exported from cachetop.util.durations: commands, plugins and tests import them from here.
from cachetop.util.durations import DURATION_BOUNDS as DURATION_BOUNDS
from cachetop.util.durations import DurationBounds as DurationBounds
from cachetop.util.durations import bounded_duration
from cachetop.util.durations import bounds_for as bounds_for
from cachetop.util.durations import parse_duration as parse_duration

KeyPath = tuple[str | int, ...]


class ConfigError(Exception):
    """A mistake in a config file or on the command line. str() is the line to print."""


_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY_PART = rf"(?:{_BARE}|{_QUOTED})"
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER_RE = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?")
_KEYLINE_RE = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART_RE = re.compile(_KEY_PART)


_ONE_LINE_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"(?!")|\'[^\'\n]*\'(?!\')')


def _strip_single_line_strings(text: str) -> str:
    """Drops one-line strings, so a triple quote inside one does not open a multi-line string."""
    if '"""' not in text and "'''" not in text:
        return text
    return _ONE_LINE_STRING.sub("", text)


def _split_dotted(text: str) -> list[str]:
    parts = []
    for m in _PART_RE.finditer(text):
        part = m.group(0)
        if part[0] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return parts


class LineLocator:
    """Maps key paths like ("instance", 2, "url") to 1-based line numbers."""

    def __init__(self, text: str) -> None:
        self.lines: dict[KeyPath, int] = {}
        array_counts: dict[tuple[str, ...], int] = {}
        current: KeyPath = ()
        in_multiline: str | None = None

        def with_indexes(names: list[str]) -> KeyPath:
            # [instance.tls] after [[instance]] belongs to the latest element of that array.
            path: list[str | int] = []
            for i, name in enumerate(names):
                path.append(name)
                count = array_counts.get(tuple(names[: i + 1]))
                if count and i < len(names) - 1:
                    path.append(count - 1)
            return tuple(path)

        def record(path: KeyPath, lineno: int) -> None:
            for end in range(1, len(path) + 1):
                self.lines.setdefault(path[:end], lineno)

        for lineno, line in enumerate(text.splitlines(), start=1):
            if in_multiline:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            header = _HEADER_RE.match(line)
            if header:
                names = _split_dotted(header.group(2))
                if header.group(1) == "[[":
                    key = tuple(names)
                    idx = array_counts.get(key, 0)
                    array_counts[key] = idx + 1
                    current = (
                        (*with_indexes(names[:-1]), names[-1], idx) if len(names) > 1 else (names[0], idx)
                    )
                else:
                    current = with_indexes(names)
                record(current, lineno)
                continue
            keyline = _KEYLINE_RE.match(line)
            if keyline:
                record((*current, *_split_dotted(keyline.group(1))), lineno)
                rest = _strip_single_line_strings(line[keyline.end() :])
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2 == 1:
                        in_multiline = quote

    def line_of(self, path: KeyPath) -> int | None:
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class ConfigContext:
    """What section parsers need to report mistakes at the right line."""

    path: str
    locator: LineLocator | None = None
    env: Mapping[str, str] | None = None

    def where(self, key_path: KeyPath) -> str:
        line = self.locator.line_of(key_path) if self.locator else None
        return f"{self.path}:{line}" if line else f"{self.path}:1"

    def fail(self, key_path: KeyPath, message: str) -> NoReturn:
        raise ConfigError(f"{self.where(key_path)}: {message}")

    # --- typed getters: each names what is allowed when it fails -------------------------------

    def check_keys(self, table: Mapping[str, Any], allowed: Iterable[str], key_path: KeyPath) -> None:
        allowed = list(allowed)
        for key in table:
            if key not in allowed:
                where = ".".join(str(p) for p in key_path if isinstance(p, str))
                self.fail(
                    (*key_path, key),
                    f"unknown key {key!r} in [{where}] (allowed: {', '.join(sorted(allowed))})",
                )

    def table(self, value: Any, key_path: KeyPath) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.fail(key_path, f"{_name(key_path)} must be a table, not {_type_name(value)}")
        return value

    def string(self, value: Any, key_path: KeyPath, *, choices: Iterable[str] | None = None) -> str:
        if not isinstance(value, str):
            self.fail(key_path, f"{_name(key_path)} must be a string, not {_type_name(value)}")
        if choices is not None:
            choices = list(choices)
            if value not in choices:
                self.fail(
                    key_path, f"{_name(key_path)} = {value!r} is not allowed (allowed: {', '.join(choices)})"
                )
        return value

    def boolean(self, value: Any, key_path: KeyPath) -> bool:
        if not isinstance(value, bool):
            self.fail(key_path, f"{_name(key_path)} must be true or false, not {_type_name(value)}")
        return value

    def number(self, value: Any, key_path: KeyPath, *, minimum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key_path, f"{_name(key_path)} must be a number, not {_type_name(value)}")
        if minimum is not None and value < minimum:
            self.fail(key_path, f"{_name(key_path)} must be at least {minimum}, not {value}")
        return float(value)

    def integer(self, value: Any, key_path: KeyPath, *, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key_path, f"{_name(key_path)} must be a whole number, not {_type_name(value)}")
        if minimum is not None and value < minimum:
            self.fail(key_path, f"{_name(key_path)} must be at least {minimum}, not {value}")
        return value

    def string_list(self, value: Any, key_path: KeyPath) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key_path, f"{_name(key_path)} must be a list of strings, not {_type_name(value)}")
        return tuple(value)

    def duration(self, value: Any, key_path: KeyPath, *, allow_zero: bool = False) -> float:
        """A finite duration within the bounds DURATION_BOUNDS gives for this key's name."""
        name = _name(key_path)
        try:
            return bounded_duration(value, name, allow_zero=allow_zero)
        except ValueError as exc:
            self.fail(key_path, str(exc))

    def expand_env(self, value: Any, key_path: KeyPath) -> Any:
        """Substitutes ${VAR} in every string below value; a missing variable is an error."""
        env = os.environ if self.env is None else self.env
        if isinstance(value, str):

            def sub(m: re.Match[str]) -> str:
                name = m.group(1)
                if name not in env:
                    self.fail(
                        key_path,
                        f"environment variable ${{{name}}} is not set "
                        f"(export it, or write the value in the file)",
                    )
                return env[name]

            return _ENV_RE.sub(sub, value)
        if isinstance(value, list):
            return [self.expand_env(v, (*key_path, i)) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.expand_env(v, (*key_path, k)) for k, v in value.items()}
        return value


def _name(key_path: KeyPath) -> str:
    names = [p for p in key_path if isinstance(p, str)]
    return names[-1] if names else "value"


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a config this large is the wrong file, not a config


def read_config_text(path: str | Path) -> str:
    """The text of a config file, refusing anything but a regular file of sane size.

    A FIFO would block open() forever and a device may never end, so the type is checked with
    stat() before opening, and again with fstat() on a descriptor opened O_NONBLOCK (the path
    may have been swapped in between); a regular file reads the same with O_NONBLOCK set.
    """
    path_str = str(path)
    try:
        _check_regular(path_str, os.stat(path_str).st_mode)
        fd = os.open(path_str, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ConfigError(f"{path_str}: no such file") from None
    except PermissionError:
        raise ConfigError(f"{path_str}: permission denied (cachetop must be able to read it)") from None
    except OSError as exc:
        raise ConfigError(f"{path_str}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        try:
            info = os.fstat(file.fileno())
            _check_regular(path_str, info.st_mode)
            if info.st_size > MAX_CONFIG_BYTES:
                raise ConfigError(
                    f"{path_str}: the file is {info.st_size:,} bytes; a config is at most "
                    f"{MAX_CONFIG_BYTES // (1024 * 1024)} MiB (is this the right file?)"
                )
            data = file.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{path_str}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path_str}: the file grew past {MAX_CONFIG_BYTES // (1024 * 1024)} MiB while read"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path_str}:{line}: the file is not UTF-8 text ({exc.reason})") from None


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_regular(path: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    raise ConfigError(f"{path}: this is {kind}, not a regular file (a config must be a TOML file)")


def load_toml(path: str | Path) -> tuple[dict[str, Any], ConfigContext]:
    """Reads and parses a TOML file; syntax errors become FILE:LINE: messages."""
    path_str = str(path)
    text = read_config_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path_str}:{syntax_error_message(text, str(exc))}") from None
    return data, ConfigContext(path_str, LineLocator(text))


_AT_RE = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)")


def syntax_error_message(text: str, message: str) -> str:
    """tomllib's message as `LINE: invalid TOML: ...`, at the line a person must fix.

    tomllib reports where it gave up: for a list or string left open that is the next table
    header, or "end of document" (which would read as line 1). The line that opened it is the
    one to fix, so that is reported, with where tomllib stopped.
    """
    at = _AT_RE.search(message)
    detail = _AT_RE.sub("", message)
    lines = text.splitlines() or [""]
    if at and at.group(1):
        line, column = int(at.group(1)), int(at.group(2))
    else:
        line, column = len(lines), len(lines[-1]) + 1
    where = "the end of the file" if at and not at.group(1) else f"line {line}"
    opened = open_construct(text, line, column)
    # Only what is still open at the end of the file is "never closed": `[1,\n bad ]` is closed.
    if opened is not None and opened in _open_constructs(text, len(text)):
        _, opened_line, what, closer = opened
        return (
            f"{opened_line}: invalid TOML: this {what} is never closed (add {closer}); "
            f"the parser stopped at {where}: {detail} (see https://toml.io)"
        )
    if at and not at.group(1):
        detail += " at the end of the file"
    return f"{line}: invalid TOML: {detail} (see https://toml.io)"


_Opened = tuple[int, int, str, str]  # offset, line, what ("list"...), what closes it


def open_construct(text: str, line: int, column: int) -> _Opened | None:
    """The innermost list, inline table or string still open at (line, column)."""
    offsets = [0, *(m.end() for m in re.finditer("\n", text))]
    stop = offsets[line - 1] + column - 1 if line - 1 < len(offsets) else len(text)
    stack = _open_constructs(text, min(stop, len(text)))
    return stack[-1] if stack else None


def _open_constructs(text: str, stop: int) -> list[_Opened]:
    """Lists, inline tables and strings open at offset `stop`, outermost first. A small scanner
    that knows strings, comments, table headers and brackets: enough to find what is open."""
    stack: list[_Opened] = []
    i, lineno, at_line_start = 0, 1, True
    while i < stop:
        char = text[i]
        if char == "\n":
            lineno, at_line_start = lineno + 1, True
            i += 1
            continue
        if char in " \t\r":
            i += 1
            continue
        if char == "#":
            end = text.find("\n", i)
            i = stop if end < 0 else end
            continue
        if char in "\"'":
            quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else char
            start, start_line = i, lineno
            i += len(quote)
            while i < stop and not text.startswith(quote, i):
                if text[i] == "\\" and quote[0] == '"':
                    i += 1
                elif text[i] == "\n":
                    if len(quote) == 1:
                        break  # a one-line string ends at the line's end (tomllib says so)
                    lineno += 1
                i += 1
            if i >= stop:
                return [*stack, (start, start_line, "string", quote)]
            i += len(quote) if text.startswith(quote, i) else 0
            at_line_start = False
            continue
        if char == "[" and at_line_start and not stack:
            end = text.find("\n", i)  # a [table] or [[array]] header
            i = stop if end < 0 else end
            continue
        at_line_start = False
        if char in "[{":
            stack.append((i, lineno, "list" if char == "[" else "inline table", "]" if char == "[" else "}"))
        elif char in "]}" and stack:
            stack.pop()
        i += 1
    return stack


SectionParser = Callable[[Any, ConfigContext], Any]

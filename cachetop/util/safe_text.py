"""Showing names that come from the network (keys, client names) safely.

A key may hold Rich markup, terminal escape sequences, invalid UTF-8 or megabytes. The result
of display_key() is plain, printable, bounded text: callers still pass it to Rich as Text (not
markup), so a key like "[bold]x" prints literally.
"""

from __future__ import annotations

import re

from cachetop.util.log_rewrite import RewritingFilter

ELLIPSIS = "…"

# Backslash (escaped so that escapes stay unambiguous), bytes that were not UTF-8 (surrogate
# escapes), C0 controls, DEL, C1 controls (ESC, CSI, OSC...), and the Unicode line separators and
# bidi overrides, which can reorder or hide what follows them on a terminal.
_UNSAFE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\udc80-\udcff]")


def _escape_char(m: re.Match[str]) -> str:
    char = m.group(0)
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def display_key(raw: bytes | str, max_len: int = 80) -> str:
    """Printable text for an untrusted name: invalid UTF-8, backslashes and control characters
    become backslash escapes, and anything longer than max_len is cut with an ellipsis."""
    max_len = max(max_len, 1)
    # Look at no more than could be shown, so a megabyte key costs no more than a short one.
    limit = max_len * 4 + 4
    if isinstance(raw, bytes | bytearray | memoryview):
        head = bytes(raw[:limit])
        text = head.decode("utf-8", errors="surrogateescape")
        cut = len(raw) > limit
    else:
        text = raw[:limit]
        cut = len(raw) > limit
    text = _UNSAFE.sub(_escape_char, text)
    if len(text) > max_len or cut:
        return text[: max_len - 1] + ELLIPSIS
    return text


# What escape_controls() escapes: display_key's set without the backslash (log lines are not
# parsed back) and, optionally, without newline and tab (a traceback keeps its lines).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\udc80-\udcff]")
_CONTROLS_BUT_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\udc80-\udcff]"
)


def escape_controls(text: str, *, keep_lines: bool = False) -> str:
    """Control characters as backslash escapes, the rest untouched: text already passed through
    display_key() comes out the same, so nothing is escaped twice."""
    return (_CONTROLS_BUT_LINES if keep_lines else _CONTROLS).sub(_escape_char, text)


class EscapeControlsFilter(RewritingFilter):
    """Attach to log handlers: a name with a terminal escape (an instance, a cluster node, a
    server's error text) reaches the log escaped, and one record stays one line."""

    def rewrite(self, text: str) -> str:
        return escape_controls(text)

    def rewrite_lines(self, text: str) -> str:
        return escape_controls(text, keep_lines=True)


def clip_message(text: str, max_len: int = 200) -> str:
    """A message from code we did not write (a plugin's exception) on one line: control
    characters escaped, and, when too long, cut at the last word boundary before max_len with an
    ellipsis, never mid-word (a 'line 1 co' reads as a different message)."""
    shown = display_key(text, len(text) * 4 + 4)  # escapes only: nothing cut here
    if len(shown) <= max_len:
        return shown
    head = shown[: max_len - 1]
    space = head.rfind(" ")
    return (head[:space] if space > max_len // 2 else head).rstrip(" ,;:") + ELLIPSIS

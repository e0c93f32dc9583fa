"""A cap on one line of a stream (MONITOR, memcached `watch`): what a reader holds stays bounded.

The stream readers keep the partial last line of a chunk until the next chunk completes it. A
server that never sends a newline (a hostile or broken peer, or a MONITOR line that quotes a
multi-megabyte value) would make that partial line grow without limit. So once it passes
`max_line` bytes, its head is parsed as if the line ended there (the command and the key come
first, so a cut `SET key <huge value>` still counts), and the rest, up to the next newline, is
dropped as it arrives. `cut` counts such lines, for the status line.
"""

from __future__ import annotations


class LineCap:
    __slots__ = ("_skipping", "cut", "max_line")

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.cut = 0  # lines longer than max_line: their head was parsed, the rest dropped
        self._skipping = False

    def new_stream(self) -> None:
        """A new connection starts on a line boundary."""
        self._skipping = False

    def skip(self, data: bytes) -> bytes:
        """Drops what is left of a cut line from a new chunk; returns the rest of the chunk."""
        if not self._skipping:
            return data
        end = data.find(b"\n")
        if end < 0:
            return b""
        self._skipping = False
        return data[end + 1 :]

    def cut_if_long(self, partial: bytes) -> bytes | None:
        """For a partial line longer than max_line: its head, ended with a newline so a parser
        takes it as a line, and the rest of that line will be skipped. None if it is short."""
        if len(partial) <= self.max_line:
            return None
        self.cut += 1
        self._skipping = True
        return partial[: self.max_line] + b"\n"

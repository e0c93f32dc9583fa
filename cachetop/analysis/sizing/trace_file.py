"""`--trace FILE`: one access per line, `KEY [SIZE [TIME]]`, separated by spaces, tabs or commas.

SIZE is the object's size in bytes (then memory on the curve is the sum of sizes); TIME is in
seconds (Redis's sampled LRU has a clock of 1 s: without times each line is its own second, an
LRU clock that never ties). Blank lines and lines starting with `#` are skipped. Every line is a
read served by the cache (a miss is filled, as cache-aside does).
"""

from __future__ import annotations

import re
from pathlib import Path

from cachetop.analysis.sizing.shards import SampledTrace, SpatialFilter

_SPLIT = re.compile(rb"[\s,]+")


class TraceFileError(ValueError):
    """A line that cannot be read, as `file:line: what is wrong`."""


def read_trace(
    path: Path, rate: float, seed: int = 0, max_lines: int | None = None
) -> tuple[SampledTrace, bool]:
    """The sampled trace of the file and whether its lines had sizes."""
    trace = SampledTrace(rate)
    keep = SpatialFilter(rate, seed)
    sized = None
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise TraceFileError(f"{path}: cannot read it ({exc.strerror})") from None
    with handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith(b"#"):
                continue
            fields = _SPLIT.split(line)
            if len(fields) > 3:
                raise TraceFileError(f"{path}:{number}: expected KEY [SIZE [TIME]], got {len(fields)} fields")
            try:
                size = int(fields[1]) if len(fields) > 1 else 0
                at = float(fields[2]) if len(fields) > 2 else float(number)
            except ValueError:
                raise TraceFileError(
                    f"{path}:{number}: SIZE must be a whole number of bytes and TIME a number of seconds"
                ) from None
            if size < 0:
                raise TraceFileError(f"{path}:{number}: SIZE must not be negative")
            has_size = len(fields) > 1
            if sized is None:
                sized = has_size
            elif sized != has_size:
                raise TraceFileError(f"{path}:{number}: some lines have a SIZE and some do not")
            trace.reads_total += 1
            trace.count_all((fields[0],))
            if keep.keep(fields[0]):
                trace.add_read(fields[0], at, size if sized else 1)
            if max_lines is not None and trace.reads_total >= max_lines:
                break
    return trace, bool(sized)

"""The last line of defence for secrets: every secret cachetop learns is registered here, and
anything printed or logged can be scrubbed of them. The first line is never formatting them."""

from __future__ import annotations

import json
import threading

from cachetop.util.log_rewrite import RewritingFilter

_secrets: set[str] = set()
_lock = threading.Lock()
MASK = "***"


def register_secret(value: str | None) -> None:
    # Very short values would mask ordinary words; they are still never formatted on purpose.
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    if not _secrets:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def json_has_secret(text: str) -> bool:
    """Whether JSON text (json.dumps' default escaping) holds a registered secret, as written or as
    JSON escapes it: a cheap check that spares scrubbing a large document string by string."""
    with _lock:
        secrets = list(_secrets)
    return any(s in text or json.dumps(s)[1:-1] in text for s in secrets)


class ScrubFilter(RewritingFilter):
    """Attach to log handlers so no record leaves with a secret in it, tracebacks included."""

    def rewrite(self, text: str) -> str:
        return scrub(text)


def scrub_json(value: object) -> object:
    """Scrubs every string inside a JSON-ready structure (scrubbing the dumped text could cut a
    number that happens to contain a short secret)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_json(v) for v in value]
    return value

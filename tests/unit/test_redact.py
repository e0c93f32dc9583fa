"""Secrets never leave: not in messages, not in tracebacks, not through a malformed URL."""

from __future__ import annotations

import io
import json
import logging

import pytest

from cachetop.engine.targets import _redact, parse_target
from cachetop.util.redact import ScrubFilter, register_secret, scrub, scrub_json


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (":hunter22@h:6379", ":***@h:6379"),
        ("redis://h:6379?password=hunter22", "redis://h:6379?…"),
        ("redis-sentinel://u:pa/ss@h:1/m", "redis-sentinel://u:***@h:1/m"),
        ("redis://admin:s3cret@h:1/x", "redis://admin:***@h:1/x"),
        ("redis://onlyone@h:1", "redis://***@h:1"),
        ("redis://h:1", "redis://h:1"),
        # Everything before the LAST "@" is user information, whatever it holds.
        ("redis://:Hunter2?secretX@host:1", "redis://:***@host:1"),
        ("redis://u:a#b/c[d]@e@[::1]:7/2", "redis://u:***@[::1]:7/2"),
        # No "@": a "port" that is not a number may be a password whose "@" was forgotten.
        ("redis://:s3cret/h:1", "redis://:***/h:1"),
        ("redis-cluster://a:1,b:pw99", "redis-cluster://a:1,b:***"),
    ],
)
def test_malformed_urls_are_redacted(url: str, shown: str) -> None:
    assert _redact(url) == shown


def test_parse_errors_never_echo_the_password() -> None:
    for url in ("redis://u:Zz9-secret@h:notaport", "Zz9-secret@h:1", "redis://h:1?password=Zz9-secret"):
        with pytest.raises(ValueError) as info:
            parse_target(url)
        assert "Zz9-secret" not in str(info.value)
    assert scrub("echo Zz9-secret") == "echo ***"  # and it was registered for scrubbing


def test_tracebacks_in_logs_are_scrubbed() -> None:
    register_secret("tr4ceback-secret")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ScrubFilter())
    log = logging.getLogger("cachetop.test.redact")
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError("failed with tr4ceback-secret inside")
        except RuntimeError:
            log.exception("subscriber failed for %s", "tr4ceback-secret")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "RuntimeError: failed with *** inside" in text
    assert "tr4ceback-secret" not in text


def test_json_scrubbing_keeps_numbers_intact() -> None:
    register_secret("1234")
    doc = {"time": 1716912345.123, "error": "auth 1234 refused", "items": ["x1234y", 1234]}
    assert json.dumps(scrub_json(doc)) == (
        '{"time": 1716912345.123, "error": "auth *** refused", "items": ["x***y", 1234]}'
    )


@pytest.mark.parametrize(
    "char", [*":/?#[]@!$&'()*+,;=%", " ", '"', "\\", "<", ">", "{", "}", "|", "^", "`", "\t"]
)
def test_a_password_may_hold_any_reserved_character(char: str) -> None:
    password = f"Hunter2{char}secretX"
    target = parse_target(f"redis://user:{password}@h:7/3")
    assert (target.host, target.port, target.db, target.username, target.password) == (
        "h",
        7,
        3,
        "user",
        password,
    )
    assert target.redacted_url == "redis://user:***@h:7/3"
    with pytest.raises(ValueError) as info:
        parse_target(f"redis://user:{password}@h:0")
    assert str(info.value) == "'redis://user:***@h:0': port 0 is out of range (allowed: 1-65535)"
    assert scrub(f"x {password} y") == "x *** y"

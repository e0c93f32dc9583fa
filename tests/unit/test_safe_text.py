import io
import logging

from cachetop.util.safe_text import EscapeControlsFilter, display_key, escape_controls


def test_plain_key_is_unchanged() -> None:
    assert display_key(b"user:42:cart") == "user:42:cart"
    assert display_key("user:42:cart") == "user:42:cart"


def test_invalid_utf8_becomes_hex_escapes() -> None:
    assert display_key(b"a\xff\xfeb") == "a\\xff\\xfeb"
    assert display_key("é".encode()) == "é"


def test_terminal_escapes_and_controls_are_escaped() -> None:
    assert display_key(b"\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert display_key("a\nb\tc\x7f\x9b") == "a\\x0ab\\x09c\\x7f\\x9b"
    assert display_key("x\u202ey") == "x\\u202ey"


def test_backslash_is_escaped_so_escapes_are_unambiguous() -> None:
    assert display_key(b"a\\xff") == "a\\\\xff"
    assert display_key(b"a\xff") != display_key(b"a\\xff")


def test_markup_is_left_as_plain_text() -> None:
    # The caller shows it as rich Text, never as markup; here it must only be printable.
    assert display_key("[bold red]boom[/]") == "[bold red]boom[/]"


def test_long_keys_are_cut_with_an_ellipsis() -> None:
    assert display_key(b"k" * 100, max_len=10) == "kkkkkkkkk…"
    assert display_key(b"k" * 10, max_len=10) == "k" * 10
    huge = b"x" * 5_000_000
    assert display_key(huge) == "x" * 79 + "…"


def test_escapes_count_towards_the_length() -> None:
    assert display_key(b"\x00" * 10, max_len=9) == "\\x00\\x00…"


def test_escape_controls_leaves_escaped_text_alone() -> None:
    """The log's last line of defence never escapes a second time what display_key escaped."""
    raw = "evil\x1b[31m\u202e\\k"
    once = display_key(raw)
    assert escape_controls(once) == once == "evil\\x1b[31m\\u202e\\\\k"
    assert escape_controls(raw) == "evil\\x1b[31m\\u202e\\k"
    assert escape_controls("a\nb\tc") == "a\\x0ab\\x09c"
    assert escape_controls("a\nb\tc", keep_lines=True) == "a\nb\tc"


def test_log_records_with_control_characters_are_escaped_and_stay_one_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(EscapeControlsFilter())
    log = logging.getLogger("cachetop.test.safe_text")
    log.addHandler(handler)
    try:
        log.warning("%s: down (%s)", "evil\x1b]0;title\x07", "line1\nFAKE line")
        try:
            raise RuntimeError("boom\x1b[2J")
        except RuntimeError:
            log.exception("poll failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert text.splitlines()[0] == "evil\\x1b]0;title\\x07: down (line1\\x0aFAKE line)"
    assert "RuntimeError: boom\\x1b[2J" in text
    assert "\x1b" not in text and "\x07" not in text


def test_clip_message_cuts_at_a_word_with_an_ellipsis() -> None:
    from cachetop.util.safe_text import clip_message

    assert clip_message("short message", 40) == "short message"
    assert clip_message("Expecting property name enclosed in double quotes", 30) == "Expecting property name…"
    assert clip_message("x" * 50, 10) == "xxxxxxxxx…"  # no word to cut at: at a character
    assert clip_message("bad\x1b[2Jvalue, retry later", 12) == "bad\\x1b[2Jv…"  # escaped, then cut

from cachetop.safe_text import display_key


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

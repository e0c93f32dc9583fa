import pytest

from cachetop.metrics.prefix import PrefixRoller, rollup


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"user:123:cart", b"user:*:cart"),
        (b"user:-7:cart", b"user:*:cart"),
        (b"session:6f1c2a9e-3b4d-4c5e-8f90-a1b2c3d4e5f6", b"session:*"),
        (b"obj:507f1f77bcf86cd799439011:meta", b"obj:*:meta"),
        (b"blob:da39a3ee5e6b4b0d3255bfef95601890afd80709", b"blob:*"),
        (b"price:12.50", b"price:*"),
        (b"page:cafe:facade:deadbeef", b"page:cafe:facade:deadbeef"),  # words, not ids
        (b"user:abc:cart", b"user:abc:cart"),
        (b"plain", b"plain"),
        (b"42", b"*"),
        (b"a::1", b"a::*"),
        (b"bin:\xff\x00:1", b"bin:\xff\x00:*"),
    ],
)
def test_rollup(key: bytes, expected: bytes) -> None:
    assert rollup(key) == expected


def test_separators_are_configurable() -> None:
    roller = PrefixRoller("/.")
    assert roller.rollup(b"img/2024/cat.123.jpg") == b"img/*/cat.*.jpg"
    assert roller.rollup(b"user:123") == b"user:123"  # ':' is not a separator here


def test_empty_separator_is_refused() -> None:
    with pytest.raises(ValueError):
        PrefixRoller("")

"""ViewerTally: other cachetop processes' command counts, from CLIENT LIST names."""

from __future__ import annotations

import os
from pathlib import Path

from cachetop.backends.viewers import TOKEN, ViewerRegistry, ViewerTally, counted_name, parse_counted

OTHER = "0123abcd"


def client(cid: int, name: str, flags: str = "N", omem: int = 0) -> dict[bytes, bytes]:
    return {
        b"id": str(cid).encode(),
        b"addr": f"10.0.0.{cid}:5000".encode(),
        b"name": name.encode(),
        b"flags": flags.encode(),
        b"age": b"12",
        b"omem": str(omem).encode(),
    }


def test_counted_names_round_trip_and_others_do_not_parse() -> None:
    assert parse_counted(counted_name("cachetop-probe", 7).encode()) == (TOKEN.encode(), 7)
    assert parse_counted(b"cachetop") is None
    assert parse_counted(b"app:0123abcd:5") is None  # not cachetop's


def test_growth_new_connections_and_gone_ones() -> None:
    tally = ViewerTally()
    tally.update([client(1, f"cachetop:{OTHER}:10"), client(2, "app")], continuous=False)
    assert tally.commands == 0  # the first listing is a baseline
    tally.update([client(1, f"cachetop:{OTHER}:14"), client(3, f"cachetop-probe:{OTHER}:2")], continuous=True)
    assert tally.commands == 4 + 2  # growth, and a connection made since the last listing
    tally.update([client(3, f"cachetop-probe:{OTHER}:5")], continuous=True)
    assert tally.commands == 9  # the poll connection is gone: what it sent stays counted
    tally.update([client(4, f"cachetop:{OTHER}:3")], continuous=False)
    assert tally.commands == 9  # not continuous: a new connection may predate the last poll
    assert (tally.connections, tally.viewers) == (1, 1)


def test_own_connections_unnamed_cachetop_and_foreign_monitors() -> None:
    tally = ViewerTally()
    tally.update(
        [
            client(1, counted_name("cachetop", 5)),
            client(2, counted_name("cachetop-hotkeys-monitor", 0), flags="O", omem=99),
            client(3, "cachetop-guardian"),
            client(4, "", flags="O", omem=1 << 20),
            client(5, "tool", flags="O", omem=5),
        ],
        continuous=False,
    )
    assert (tally.own_connections, tally.connections, tally.viewers, tally.uncounted) == (2, 1, 1, 1)
    assert [(m.addr, m.omem, m.age_s) for m in tally.foreign_monitors] == [
        ("10.0.0.4:5000", 1 << 20, 12),
        ("10.0.0.5:5000", 5, 12),
    ]


def test_registry_counts_other_live_processes_only(tmp_path: Path) -> None:
    mine, other = ViewerRegistry(tmp_path), ViewerRegistry(tmp_path)
    other.path = tmp_path / "1-other.json"  # another process: pid 1 is always alive
    other.path.write_text('{"pid": 1, "instances": {"h:1#42": 3}}')
    (tmp_path / "999999999-gone.json").write_text('{"pid": 999999999, "instances": {"h:1#42": 5}}')
    mine.publish("h:1#42", 2)
    assert mine.others("h:1#42") == (3, 1)
    assert not (tmp_path / "999999999-gone.json").exists()  # a dead process's list is removed


def test_a_registry_directory_someone_else_can_write_is_not_trusted(tmp_path: Path) -> None:
    """In a shared /tmp another local user could create the directory first and plant lists that
    make cachetop leave real application connections out: such a directory is ignored."""
    shared = tmp_path / "viewers"
    shared.mkdir()
    (shared / "1-planted.json").write_text('{"pid": 1, "instances": {"h:1#42": 7}}')
    registry = ViewerRegistry(shared)
    assert registry.others("h:1#42") == (7, 1)  # the directory is ours: the list counts
    shared.chmod(0o777)  # anyone may write in it
    registry._read_at = -1e9
    assert registry.others("h:1#42") == (0, 0)
    registry.publish("h:1#42", 2)
    assert not registry.path.exists()  # nothing of ours is written there either
    shared.chmod(0o700)
    if os.geteuid() == 0:  # owned by another user (root can hand it over)
        os.chown(shared, 65534, 65534)
        registry._read_at = -1e9
        assert registry.others("h:1#42") == (0, 0)

"""[inventory] files (engine/inventory.py, inventory_files.py): file_sd JSON and YAML -> instances,
every mistake at FILE:LINE, and the last good targets kept when a file breaks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cachetop.engine.config import load_config, resolve_config
from cachetop.engine.configfile import ConfigError
from cachetop.engine.inventory import Inventory, InventorySettings
from cachetop.engine.inventory_files import read_inventory_file


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_json_labels_map_to_name_group_tags_kind_and_settings(tmp_path: Path) -> None:
    groups = [
        {
            "targets": ["10.0.0.5:6379", "redis://10.0.0.6:6380/2", "valkeys://cache.example:6390"],
            "labels": {"group": "checkout", "tags": "hot, eu", "env": "prod", "__meta_x": "ignored"},
        },
        {
            "targets": ["10.0.0.7"],
            "labels": {"name": "sessions", "kind": "memcached", "interval": "5s", "read_only": "true"},
        },
        {"targets": ["redis-cluster://10.0.1.1:7000,10.0.1.2:7000"]},
    ]
    entries = read_inventory_file(str(write(tmp_path / "t.json", json.dumps(groups, indent=2))))
    got = [(e.inst.name, str(e.inst.target), e.inst.tags, e.line) for e in entries]
    assert got == [
        ("10.0.0.5:6379", "redis://10.0.0.5:6379", ("checkout", "hot", "eu", "env=prod"), 4),
        ("10.0.0.6:6380/2", "redis://10.0.0.6:6380/2", ("checkout", "hot", "eu", "env=prod"), 5),
        ("cache.example:6390", "valkeys://cache.example:6390", ("checkout", "hot", "eu", "env=prod"), 6),
        ("sessions", "memcached://10.0.0.7:11211", (), 17),
        (
            "redis-cluster://10.0.1.1:7000,10.0.1.2:7000",
            "redis-cluster://10.0.1.1:7000,10.0.1.2:7000",
            (),
            28,
        ),
    ]
    sessions = entries[3].inst
    assert (sessions.interval, sessions.read_only, sessions.cluster) == (5.0, True, False)
    assert entries[4].inst.cluster is True


def test_yaml_file_and_env_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_PASSWORD", "s3cret-pw")
    path = write(
        tmp_path / "t.yaml",
        "# fleet\n"
        "- targets:\n"
        "    - redis://:${CACHE_PASSWORD}@10.0.0.5:6379\n"
        "    - 10.0.0.6:11211\n"
        "  labels:\n"
        "    group: web\n"
        "    kind: memcached\n",
    )
    entries = read_inventory_file(str(path))
    assert [(e.inst.name, e.line) for e in entries] == [("10.0.0.5:6379", 3), ("10.0.0.6:11211", 4)]
    assert entries[0].inst.target.password == "s3cret-pw"
    assert str(entries[0].inst.target) == "redis://:***@10.0.0.5:6379"
    assert entries[1].inst.target.kind == "memcached" and entries[1].inst.tags == ("web",)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "a.json",
            '[\n {"targets": ["a:1"]}\n {"targets": ["b:1"]}\n]',
            "3: invalid JSON: Expecting ',' delimiter",
        ),
        ("a.json", '{"targets": []}', "1: a file_sd file is a JSON list of groups"),
        ("a.json", '[\n {"targets": ["a:1"]},\n {"labels": {}}\n]', '3: a group needs "targets"'),
        ("a.json", '[\n {"targets": ["a:1"], "lables": {}}\n]', "2: unknown key 'lables' in a group"),
        ("a.json", '[{"targets": [\n "a:1",\n "http://b:1"\n]}]', "3: unknown scheme 'http'"),
        ("a.json", '[{"targets": [\n "a:1",\n 7\n]}]', "3: a target must be a non-empty string"),
        (
            "a.json",
            '[{"targets": ["a:1", "b:1"],\n "labels": {"name": "x"}}]',
            "2: the label name names one target, and this group has 2",
        ),
        ("a.json", '[{"targets": ["a:1"],\n "labels": {"kind": "mysql"}}]', "2: kind 'mysql' is not allowed"),
        ("a.json", '[{"targets": ["a:1"],\n "labels": {"port": 6379}}]', "2: label 'port' must be a string"),
        ("a.json", '[{"targets": ["a:1"],\n "labels": {"interval": "1ns"}}]', "2: interval"),
        (
            "a.json",
            '[{"targets": ["${NOPE_NOT_SET}:1"]}]',
            "1: environment variable ${NOPE_NOT_SET} is not set",
        ),
        ("a.yaml", "- targets:\n    - a:1\n  labels: {group: [x}\n", "3: invalid YAML"),
        ("a.yaml", "- targets:\n    - a:1\n- labels: {}\n", '3: a group needs "targets"'),
    ],
)
def test_mistakes_say_file_and_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(ConfigError) as err:
        read_inventory_file(str(path))
    assert str(err.value).startswith(f"{path}:{message}"), str(err.value)


def test_a_password_never_reaches_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", '[{"targets": ["redis://:hunter2@a:1/x"]}]')
    with pytest.raises(ConfigError) as err:
        read_inventory_file(str(path))
    assert "hunter2" not in str(err.value) and f"{path}:1: " in str(err.value)


def test_broken_file_keeps_its_last_good_targets_and_a_removed_file_drops_them(tmp_path: Path) -> None:
    folder = tmp_path / "inventory.d"
    folder.mkdir()
    write(folder / "a.json", '[{"targets": ["a:1", "b:1"]}]')
    write(folder / "b.yml", "- targets: [c:1]\n")
    write(folder / "notes.txt", "not read")
    inventory = Inventory(InventorySettings(paths=(str(folder),)))
    problems: list[str] = []
    assert inventory.scan(problems.append) is True
    assert [i.name for i in inventory.instances({}, problems.append)] == ["a:1", "b:1", "c:1"]
    assert inventory.scan(problems.append) is False  # nothing changed: nothing re-read
    write(folder / "a.json", '[{"targets": ["a:1", "b:1"]')  # cut short by a careless edit
    assert inventory.scan(problems.append) is False
    assert problems == [
        f"{folder / 'a.json'}:1: invalid JSON: Expecting ',' delimiter (column 28) "
        "(keeping its last good targets)"
    ]
    assert [i.name for i in inventory.instances({}, problems.append)] == ["a:1", "b:1", "c:1"]
    write(folder / "a.json", '[{"targets": ["a:1", "d:1"]}]')
    assert inventory.scan(problems.append) is True
    os.remove(folder / "b.yml")
    assert inventory.scan(problems.append) is True
    assert [i.name for i in inventory.instances({}, problems.append)] == ["a:1", "d:1"]
    # A name used twice: the first file (by path) keeps it, the other target is reported.
    write(folder / "z.json", '[\n{"targets": ["a:1"]}\n]')
    inventory.scan(problems.append)
    assert [i.name for i in inventory.instances({"d:1": "x.toml:3"}, problems.append)] == ["a:1"]
    assert problems[-2:] == [
        f"{folder / 'a.json'}:1: the name 'd:1' is already used at x.toml:3 (names must be unique; "
        "give this target a name label)",
        f"{folder / 'z.json'}:2: the name 'a:1' is already used at {folder / 'a.json'}:1 (names must be "
        "unique; give this target a name label)",
    ]


def test_inventory_section_in_the_config(tmp_path: Path) -> None:
    write(tmp_path / "targets.json", '[{"targets": ["10.0.0.9:6379"], "labels": {"name": "files-1"}}]')
    config_path = write(
        tmp_path / "c.toml",
        '[[instance]]\nname = "static"\nurl = "redis://10.0.0.1:6379"\n\n'
        '[inventory]\nfiles = ["targets.json"]\nrefresh = "2s"\n',
    )
    config = load_config(config_path)
    assert [i.name for i in config.instances] == ["static", "files-1"]
    assert config.sections["inventory"].settings.refresh == 2.0
    # Only [inventory]: no [[instance]] is needed.
    only = write(tmp_path / "only.toml", '[inventory]\nfiles = ["targets.json"]\n')
    assert [i.name for i in resolve_config([], str(only)).instances] == ["files-1"]
    for text, message in (
        ("[inventory]\nrefresh = '1s'\n", ":1: [inventory] needs files = "),
        ("[inventory]\nfiles = ['targets.json']\nrefesh = '1s'\n", ":3: unknown key 'refesh' in [inventory]"),
        ("[inventory]\nfiles = ['missing.json']\n", "missing.json: no such file"),
        (
            '[[instance]]\nname = "files-1"\nurl = "redis://a:1"\n[inventory]\nfiles = ["targets.json"]\n',
            "targets.json:1: the name 'files-1' is already used at",
        ),
    ):
        bad = write(tmp_path / "bad.toml", text)
        with pytest.raises(ConfigError) as err:
            load_config(bad)
        assert message in str(err.value), str(err.value)

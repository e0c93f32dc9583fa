"""Plugin discovery: folders, real entry points (a dist-info on sys.path), and bad plugins."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cachetop import cli
from cachetop.actions.warm_sources import FileWarmer, create_warmer, read_hot_keys
from cachetop.engine.config import parse_config
from cachetop.engine.configfile import ConfigContext
from cachetop.plugins import PluginFailed, PluginNotFound, WarmItem, discover, plugin_paths_of

GOOD = '''
from cachetop.plugins import WarmItem

class Squares:
    """Squares of 1..n (option n)."""
    name = "squares"
    def __init__(self, options):
        self.n = int(options.get("n", "3"))
    def plan(self):
        return (WarmItem(b"sq:%d" % i) for i in range(1, self.n + 1))
    def fetch(self, item):
        return str(int(item.key[3:]) ** 2)

WARMERS = {"squares": Squares}
'''


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_folder_plugin_is_found_and_works(tmp_path: Path) -> None:
    write(tmp_path, "squares.py", GOOD)
    reg = discover([tmp_path], use_entry_points=False)
    assert reg.errors == []
    plugin = reg.get("warmers", "squares")
    assert (plugin.origin, plugin.description) == (
        str(tmp_path / "squares.py"),
        "Squares of 1..n (option n).",
    )
    warmer = reg.create_warmer("squares", {"n": "4"})
    items = list(warmer.plan())
    assert [i.key for i in items] == [b"sq:1", b"sq:2", b"sq:3", b"sq:4"]
    assert [warmer.fetch(i) for i in items] == ["1", "4", "9", "16"]


def test_bad_plugins_are_errors_not_crashes(tmp_path: Path) -> None:
    write(tmp_path, "a_good.py", GOOD)
    syntax = write(tmp_path, "b_syntax.py", "WARMERS = {\n  'x': ,\n}\n")
    raising = write(tmp_path, "c_raises.py", "import os\n\nraise RuntimeError('no database configured')\n")
    exits = write(tmp_path, "d_exits.py", "import sys\nsys.exit(3)\n")
    shape = write(tmp_path, "e_shape.py", "class W:\n    def plan(self): ...\nWARMERS = {'half': W}\n")
    dup = write(
        tmp_path,
        "f_dup.py",
        "from pathlib import Path\nexec(Path(__file__).with_name('a_good.py').read_text())\n",
    )
    write(tmp_path, "_helper.py", "raise RuntimeError('helpers starting with _ are not loaded')\n")
    reg = discover([tmp_path, tmp_path / "missing"], use_entry_points=False)
    assert sorted(reg.plugins["warmers"]) == ["file", "hotkeys-replay", "squares"]
    assert [str(e) for e in reg.errors] == [
        f"plugin from {syntax}: syntax error at line 2: expression expected after dictionary key and ':'",
        f"plugin from {raising}: RuntimeError: no database configured (line 3)",
        f"plugin from {exits}: called exit(3) while loading",
        f"plugin warmer 'half' from {shape}: has no fetch (see the Warmer protocol)",
        f"plugin warmer 'squares' from {dup}: the name is already taken by {tmp_path / 'a_good.py'}; ignored",
        f"plugin from {tmp_path / 'missing'}: plugin_paths entry is not a folder",
    ]
    with pytest.raises(PluginNotFound, match="has no fetch"):
        reg.get("warmers", "half")


def test_a_plugin_that_fails_to_start_is_one_line(tmp_path: Path) -> None:
    code = "class W:\n    def __init__(self, o): raise KeyError('db')\n    def plan(self): ...\n"
    write(tmp_path, "p.py", code + "    def fetch(self, i): ...\nWARMERS = {'w': W}\n")
    reg = discover([tmp_path], use_entry_points=False)
    with pytest.raises(PluginFailed) as err:
        reg.create_warmer("w", {})
    assert str(err.value) == f"warmer 'w' ({tmp_path / 'p.py'}): 'db'"


def make_dist(site: Path, entry_points: str) -> None:
    """A real installed distribution: importlib.metadata finds its entry points on sys.path."""
    info = site / "shop_plugins-1.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shop-plugins\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(entry_points)
    (site / "shop_warmers.py").write_text(textwrap.dedent(GOOD))


def test_entry_points_are_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_dist(
        tmp_path,
        "[cachetop.warmers]\nsquares = shop_warmers:Squares\nbroken = shop_missing:Thing\n"
        "[cachetop.notifiers]\npager = shop_warmers:WarmItem\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = discover()
    squares = reg.get("warmers", "squares")
    assert squares.origin == "entry point of shop-plugins 1.2 (shop_warmers:Squares)"
    assert list(reg.create_warmer("squares", {"n": "1"}).plan()) == [WarmItem(b"sq:1")]
    assert [str(e) for e in reg.errors] == [
        "plugin warmer 'broken' from entry point of shop-plugins 1.2 (shop_missing:Thing): "
        "ModuleNotFoundError: No module named 'shop_missing'",
        "plugin notifier 'pager' from entry point of shop-plugins 1.2 (shop_warmers:WarmItem): "
        "has no send (see the Notifier protocol)",
    ]


def test_cachetop_plugins_lists_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "plug"
    write(folder, "squares.py", GOOD)
    write(folder, "zz_bad.py", "import not_installed_anywhere\n")
    conf = tmp_path / "c.toml"
    conf.write_text('plugin_paths = ["plug"]\n[[instance]]\nname = "a"\nurl = "redis://127.0.0.1:1"\n')
    status = cli.main(["plugins", "-c", str(conf)])
    out, err = capsys.readouterr()
    assert status == 1
    lines = out.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "DESCRIPTION", "(ORIGIN)"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["warmer", "file"],
        ["warmer", "hotkeys-replay"],
        ["warmer", "squares"],
    ]
    assert err == (
        f"cachetop: plugin from {folder / 'zz_bad.py'}: "
        "ModuleNotFoundError: No module named 'not_installed_anywhere' (line 1)\n"
    )


def test_plugin_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    text = 'plugin_paths = ["plug", "/abs/dir"]\n'
    path = tmp_path / "conf" / "c.toml"
    config = parse_config({"plugin_paths": ["plug", "/abs/dir"]}, ConfigContext(str(path), text))
    assert plugin_paths_of(config) == [tmp_path / "conf" / "plug", Path("/abs/dir")]


def test_file_warmer_reads_lines_and_reports_file_line(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text(
        '{"key": "a", "value": "1", "ttl": 60}\n\n{"key": "b", "value_b64": "AP8=", "ttl": null}\n'
    )
    warmer = FileWarmer({"path": str(path)})
    assert list(warmer.plan()) == [WarmItem(b"a", 60.0, b"1"), WarmItem(b"b", None, b"\x00\xff")]
    assert warmer.total == 2
    cases = {
        "not json": "not JSON",
        '{"value": "1"}': 'needs a non-empty string "key"',
        '{"key": "a", "value": "1", "ttl": -5}': (
            "ttl: -5 is not a usable TTL (allowed: a finite number of seconds from 0.001 to 315,360,000,"
            " e.g. 3600 or 1h); or null for no expiry"
        ),
        '{"key": "a", "value": "1", "tll": 5}': "unknown field 'tll' (allowed: key, value, value_b64, ttl)",
        '{"key": "a", "value_b64": "%%"}': "value_b64 is not base64",
    }
    for line, message in cases.items():
        path.write_text('{"key": "ok", "value": "1"}\n' + line + "\n")
        with pytest.raises(ValueError) as err:
            FileWarmer({"path": str(path)})
        assert str(err.value).startswith(f"{path}:2: {message}")


def test_hotkeys_replay_needs_a_loader_and_keys(tmp_path: Path) -> None:
    reg = discover([], use_entry_points=False)
    with pytest.raises(ValueError, match="needs a loader"):
        create_warmer(reg, "hotkeys-replay", {})
    with pytest.raises(PluginNotFound, match="no warmer named 'nope'"):
        create_warmer(reg, "hotkeys-replay", {"loader": "nope"}, hot_keys=[b"k"])
    plain = tmp_path / "keys.txt"
    plain.write_text("a\nb\n\nb\n")
    assert read_hot_keys(plain) == [b"a", b"b", b"b"]

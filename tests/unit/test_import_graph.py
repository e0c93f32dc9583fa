"""The import graph of the package: no cycle, and nothing in the core reaches up into the screens.

Layers (docs/architecture.md): the *top* is cachetop/tui, cachetop/commands, cachetop/cli.py and
cachetop/__main__.py; everything else is the *core* (engine, backends, metrics, hotkeys,
analysis, alerts, actions, exporters, util, ...). Rules:

- no import cycle among the package's modules; imports inside functions count (they run);
  imports under `if TYPE_CHECKING:` do not count for cycles (they never run: they name a type,
  e.g. backends/redis_sample.py naming the RedisBackend it reads);
- no import from the core into cachetop.tui or cachetop.commands, TYPE_CHECKING ones included
  (naming a screen's type is already knowing about screens);
- Textual is imported only under cachetop/tui.

The graph comes from grimp (the library behind import-linter), which reads every import
statement, function-level ones included.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

TOP = ("tui", "commands", "cli", "__main__")  # first component under the package
UPWARD = ("tui", "commands")  # what the core must not import
UI_LIBRARY = "textual"


def _part(package: str, module: str) -> str:
    rest = module[len(package) + 1 :]
    return rest.split(".", 1)[0]


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    work: list[tuple[str, Iterator[str]]] = []  # the depth-first path, each with its targets left

    def enter(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        targets = sorted(m for m in graph.find_modules_directly_imported_by(module) if m in modules)
        work.append((module, iter(targets)))

    for root in sorted(modules):
        if root in index:
            continue
        enter(root)
        while work:
            module, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    enter(target)
                elif target in on_stack:
                    low[module] = min(low[module], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def import_problems(package: str) -> list[str]:
    """Every broken rule in `package`'s import graph, one line each, sorted; [] when it is clean."""
    runtime = grimp.build_graph(package, cache_dir=None, exclude_type_checking_imports=True)
    every = grimp.build_graph(
        package, cache_dir=None, include_external_packages=True, exclude_type_checking_imports=False
    )
    own = {m for m in runtime.modules if m == package or m.startswith(package + ".")}
    problems = [f"cycle: {' <-> '.join(component)}" for component in _cycles(runtime, own)]
    for module in sorted(own):
        part = _part(package, module)
        for imported in sorted(every.find_modules_directly_imported_by(module)):
            if part not in TOP and imported.startswith(package + ".") and _part(package, imported) in UPWARD:
                problems.append(f"core imports the top: {module} -> {imported}")
            if imported.split(".", 1)[0] == UI_LIBRARY and part != "tui":
                problems.append(f"{UI_LIBRARY} outside {package}.tui: {module}")
    return sorted(problems)


def test_cachetop_has_no_cycle_and_no_upward_import() -> None:
    assert import_problems("cachetop") == []


def test_discovery_does_not_know_the_monitor() -> None:
    """Cluster discovery tells the Monitor through engine/fleet.py; it never imports monitor.py."""
    graph = grimp.build_graph("cachetop", cache_dir=None, exclude_type_checking_imports=False)
    for watcher in ("cachetop.engine.cluster", "cachetop.engine.sentinel", "cachetop.engine.fleet"):
        assert "cachetop.engine.monitor" not in graph.find_modules_directly_imported_by(watcher)
        assert not graph.chain_exists(importer=watcher, imported="cachetop.engine.monitor")


@pytest.fixture
def tiny_package(tmp_path: Path) -> Iterator[Path]:
    """A package `tinyapp` with one of each broken rule, importable from tmp_path."""
    root = tmp_path / "tinyapp"
    files = {
        "__init__.py": "",
        "engine/__init__.py": "",
        # a cycle through a function-level import
        "engine/monitor.py": "from tinyapp.engine import cluster\n",
        "engine/cluster.py": "def later():\n    from tinyapp.engine import monitor\n    return monitor\n",
        # a TYPE_CHECKING-only back-reference: not a cycle
        "engine/poller.py": "from tinyapp.engine import side\n",
        "engine/side.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from tinyapp.engine.poller import Poller\n"
        ),
        # the core reaching up, at run time and for a type only
        "engine/live.py": "import tinyapp.commands.snapshot\n",
        "alerts.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tinyapp.tui.app import App\n"
        ),
        # Textual outside the screens, and where it belongs
        "util.py": "import textual.app\n",
        "tui/__init__.py": "",
        "tui/app.py": "import textual\nfrom tinyapp.engine import monitor\n",
        "commands/__init__.py": "",
        "commands/snapshot.py": "from tinyapp.tui import app\n",
        "cli.py": "from tinyapp.commands import snapshot\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    sys.path.insert(0, str(tmp_path))
    try:
        yield root
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "tinyapp" or m.startswith("tinyapp.")]:
            del sys.modules[name]


def test_the_check_finds_each_broken_rule(tiny_package: Path) -> None:
    assert import_problems("tinyapp") == [
        "core imports the top: tinyapp.alerts -> tinyapp.tui.app",
        "core imports the top: tinyapp.engine.live -> tinyapp.commands.snapshot",
        "cycle: tinyapp.engine.cluster <-> tinyapp.engine.monitor",
        "textual outside tinyapp.tui: tinyapp.util",
    ]


def test_removing_the_cycle_clears_it(tiny_package: Path) -> None:
    (tiny_package / "engine" / "cluster.py").write_text("def later():\n    return None\n")
    assert not [p for p in import_problems("tinyapp") if p.startswith("cycle")]

"""The [inventory] section: targets read from file_sd files, and re-read when they change.

    [inventory]
    files = ["targets.json", "inventory.d/", "regions/*.yaml"]   # relative to the config file
    refresh = "5s"                                   # default: 1/4 of [settings] interval

A path is a file, a directory (its *.json, *.yaml and *.yml files, not its subdirectories) or a
glob. The files are read when the config is loaded, so every command sees their targets beside
the [[instance]] tables; the daemon then checks their modification times every `refresh` and
applies what changed (engine/inventory_watch.py). `Inventory.scan()` is that check: it re-reads
only files whose size, mtime or inode changed, and a file that fails to read keeps the targets it
last had (its mistake is reported as `file:line: what is wrong`).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cachetop.engine.config import InstanceConfig
from cachetop.engine.configfile import ConfigContext, ConfigError, KeyPath
from cachetop.engine.inventory_files import Entry, read_inventory_file

INVENTORY_KEYS = ("files", "refresh")
SUFFIXES = (".json", ".yaml", ".yml")
Signature = tuple[int, int, int]  # mtime_ns, size, inode


@dataclass(frozen=True, slots=True)
class InventorySettings:
    paths: tuple[str, ...]  # as written, made absolute against the config file's directory
    refresh: float | None = None  # None: a quarter of [settings] interval


@dataclass
class Inventory:
    """What the inventory files hold now: per file, its signature and its last good entries."""

    settings: InventorySettings
    signatures: dict[str, Signature] = field(default_factory=dict)
    entries: dict[str, list[Entry]] = field(default_factory=dict)

    def copy(self) -> Inventory:
        """An Inventory of its own (each watcher keeps its own view of which files it has read)."""
        return Inventory(self.settings, dict(self.signatures), {p: list(e) for p, e in self.entries.items()})

    def names(self) -> set[str]:
        """The names of every target the files hold now."""
        return {name for name, _ in entries_by_name(self)}

    def files(self) -> list[str]:
        """Every file the paths name now, sorted (a name defined twice: the first file wins)."""
        found: set[str] = set()
        for path in self.settings.paths:
            if os.path.isdir(path):
                found.update(str(p) for p in Path(path).iterdir() if p.suffix in SUFFIXES and p.is_file())
            elif glob.has_magic(path):
                found.update(p for p in glob.glob(path) if os.path.isfile(p))
            else:
                found.add(path)  # a file named outright must exist: its absence is reported
        return sorted(found)

    def scan(self, report: Callable[[str], None]) -> bool:
        """Re-reads the files that changed; True when anything did. A file that cannot be read
        or holds a mistake keeps its last good entries, and `report` gets `file:line: message`."""
        changed = False
        now = self.files()
        for gone in set(self.signatures) - set(now):
            del self.signatures[gone]
            self.entries.pop(gone, None)
            changed = True
        for path in now:
            try:
                info = os.stat(path)
            except OSError as exc:
                if self.signatures.get(path) != (0, 0, 0):
                    self.signatures[path] = (0, 0, 0)
                    why = (
                        "no such file"
                        if isinstance(exc, FileNotFoundError)
                        else f"cannot read: {exc.strerror}"
                    )
                    report(f"{path}: {why} (keeping its last good targets)")
                continue
            signature = (info.st_mtime_ns, info.st_size, info.st_ino)
            if self.signatures.get(path) == signature:
                continue
            self.signatures[path] = signature
            try:
                self.entries[path] = read_inventory_file(path)
            except ConfigError as exc:
                report(f"{exc} (keeping its last good targets)")
                continue
            changed = True
        return changed

    def instances(self, taken: Mapping[str, str], report: Callable[[str], None]) -> list[InstanceConfig]:
        """Every target once, in file order. `taken`: names already used (name -> where); a
        target whose name is taken is skipped and reported."""
        seen = dict(taken)
        out = []
        for path in sorted(self.entries):
            for entry in self.entries[path]:
                name = entry.inst.name
                if name in seen:
                    report(
                        f"{path}:{entry.line}: the name {name!r} is already used at {seen[name]} "
                        "(names must be unique; give this target a name label)"
                    )
                    continue
                seen[name] = f"{path}:{entry.line}"
                out.append(entry.inst)
        return out


def parse_inventory_section(raw: Any, ctx: ConfigContext) -> Inventory:
    """[inventory] -> an Inventory read once (a mistake in a file is a config error here)."""
    path: KeyPath = ("inventory",)
    table = ctx.table(raw, path)
    ctx.check_keys(table, INVENTORY_KEYS, path)
    if "files" not in table:
        ctx.fail(
            path,
            '[inventory] needs files = ["targets.json", "inventory.d/", ...] (files, directories or globs)',
        )
    base = Path(ctx.path).parent if ctx.path else Path.cwd()
    paths = tuple(str(base / Path(p).expanduser()) for p in ctx.string_list(table["files"], (*path, "files")))
    if not paths:
        ctx.fail((*path, "files"), "files is empty (name at least one file, directory or glob)")
    refresh = ctx.duration(table["refresh"], (*path, "refresh")) if "refresh" in table else None
    inventory = Inventory(InventorySettings(paths=paths, refresh=refresh))
    problems: list[str] = []
    inventory.scan(problems.append)
    if problems:
        raise ConfigError(problems[0].removesuffix(" (keeping its last good targets)"))
    return inventory


def entries_by_name(inventory: Inventory) -> Iterator[tuple[str, Entry]]:
    for path in sorted(inventory.entries):
        for entry in inventory.entries[path]:
            yield entry.inst.name, entry

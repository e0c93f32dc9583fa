"""Plugins: warming strategies, notifiers and backends from entry points and plugin folders.

Where they come from, in this order (the first of a name wins; a later one is reported):
  1. built-ins (the `file` and `hotkeys-replay` warmers);
  2. entry points of installed packages, groups `cachetop.warmers`, `cachetop.notifiers`,
     `cachetop.backends`: `name = "package.module:Factory"`;
  3. `plugin_paths = ["dir", ...]` in the TOML (relative to the config file): every `*.py` file
     directly in each folder is loaded, and its module-level dicts WARMERS, NOTIFIERS and
     BACKENDS map names to factories.

A plugin that fails to import, raises, exits or has the wrong shape becomes a PluginError with
where it came from and what went wrong; discovery carries on with the others.

The shapes (typing.Protocol, checked at load time by attribute):
  * Warmer factory: `Factory(options: Mapping[str, str]) -> Warmer`, see `Warmer` below.
  * Notifier factory: `Factory(options: Mapping[str, str]) -> cachetop.alerts.notify.Notifier`
    (`min_interval_s: float`, `send(message, thread_id) -> Delivered | Retry | Permanent`).
  * Backend factory: `Factory(inst: InstanceConfig, timeout: float) -> cachetop.backends.base.Backend`
    (`kind`, async `poll(now)`, async `probe()`, `close_probe()`, async `close()`).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from cachetop.util.safe_text import display_key

GROUPS = {"warmers": "cachetop.warmers", "notifiers": "cachetop.notifiers", "backends": "cachetop.backends"}
FILE_DICTS = {"warmers": "WARMERS", "notifiers": "NOTIFIERS", "backends": "BACKENDS"}
# What a factory's product must have, per kind: checked on the factory (a class) when it has them.
REQUIRED = {"warmers": ("plan", "fetch"), "notifiers": ("send",), "backends": ("poll", "probe", "close")}
BUILTIN_WARMERS = {
    "file": "cachetop.actions.warm_sources:FileWarmer",
    "hotkeys-replay": "cachetop.actions.warm_sources:HotKeysReplayWarmer",
}


@dataclass(frozen=True, slots=True)
class WarmItem:
    """One key to warm. `value` given: written as is (no fetch). `ttl` in seconds, None: no expiry."""

    key: bytes
    ttl: float | None = None
    value: bytes | None = None


@runtime_checkable
class Warmer(Protocol):
    """A warming strategy: which keys to warm, and how to fetch a value from the source of truth.

    `plan()` names the keys (cheap: no fetching). `fetch(item)` is called at most once per key
    across every concurrent warmer (under the key's lock), only when the key is missing, and may
    be slow (a database query); it returns the value, or None to skip the key.
    """

    name: ClassVar[str]
    description: ClassVar[str]

    def plan(self) -> Iterable[WarmItem]: ...

    def fetch(self, item: WarmItem) -> bytes | str | None: ...


@dataclass(frozen=True, slots=True)
class Plugin:
    kind: str  # warmers | notifiers | backends
    name: str
    origin: str  # "built-in", "entry point pkg 1.0 (mod:Obj)", or a file path
    factory: Any
    description: str = ""


@dataclass(frozen=True, slots=True)
class PluginError:
    origin: str
    message: str
    kind: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        what = f"{self.kind[:-1]} {self.name!r} " if self.kind and self.name else ""
        return f"plugin {what}from {self.origin}: {self.message}"


class PluginNotFound(LookupError):
    pass


@dataclass
class Registry:
    plugins: dict[str, dict[str, Plugin]] = field(default_factory=lambda: {k: {} for k in GROUPS})
    errors: list[PluginError] = field(default_factory=list)

    def add(self, plugin: Plugin) -> None:
        missing = [
            a
            for a in REQUIRED[plugin.kind]
            if isinstance(plugin.factory, type) and not hasattr(plugin.factory, a)
        ]
        if not callable(plugin.factory):
            self.errors.append(
                PluginError(
                    plugin.origin, "is not callable (a factory or class is needed)", plugin.kind, plugin.name
                )
            )
            return
        if missing:
            self.errors.append(
                PluginError(
                    plugin.origin,
                    f"has no {', '.join(missing)} (see the {plugin.kind[:-1].title()} protocol)",
                    plugin.kind,
                    plugin.name,
                )
            )
            return
        table = self.plugins[plugin.kind]
        if plugin.name in table:
            first = table[plugin.name].origin
            self.errors.append(
                PluginError(
                    plugin.origin, f"the name is already taken by {first}; ignored", plugin.kind, plugin.name
                )
            )
            return
        table[plugin.name] = plugin

    def get(self, kind: str, name: str) -> Plugin:
        table = self.plugins[kind]
        if name not in table:
            broken = [e for e in self.errors if e.kind == kind and e.name == name]
            if broken:
                raise PluginNotFound(str(broken[0]))
            known = ", ".join(sorted(table)) or "none"
            raise PluginNotFound(f"no {kind[:-1]} named {display_key(name, 60)!r} (installed: {known})")
        return table[name]

    def create_warmer(self, name: str, options: Mapping[str, str]) -> Warmer:
        """Builds a warmer; a plugin that raises gives PluginNotFound-like clear text, not a traceback."""
        return self.create("warmers", name, options)  # type: ignore[no-any-return]

    def create_notifier(self, name: str, options: Mapping[str, str]) -> Any:
        """Builds a notifier (cachetop.alerts.notify.Notifier) for a `type = "plugin"` channel."""
        return self.create("notifiers", name, options)

    def create(self, kind: str, name: str, options: Mapping[str, str]) -> Any:
        plugin = self.get(kind, name)
        what = kind[:-1]
        try:
            return plugin.factory(dict(options))
        except (ValueError, OSError, KeyError, TypeError) as exc:
            raise PluginFailed(f"{what} {name!r} ({plugin.origin}): {exc}") from None
        except Exception as exc:
            raise PluginFailed(
                f"{what} {name!r} ({plugin.origin}) failed to start: {type(exc).__name__}: {exc}"
            ) from None


class PluginFailed(RuntimeError):
    pass


def _describe(factory: Any) -> str:
    text = getattr(factory, "description", None) or (getattr(factory, "__doc__", None) or "")
    return " ".join(str(text).strip().split("\n\n")[0].split())[:100]


def _import_ref(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _load_builtins(reg: Registry) -> None:
    for name, ref in BUILTIN_WARMERS.items():
        factory = _import_ref(ref)
        reg.add(Plugin("warmers", name, "built-in", factory, _describe(factory)))


def _ep_origin(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    pkg = f"{dist.name} {dist.version}" if dist is not None else "unknown package"
    return f"entry point of {pkg} ({ep.value})"


def _load_entry_points(reg: Registry) -> None:
    for kind, group in GROUPS.items():
        for ep in entry_points(group=group):
            origin = _ep_origin(ep)
            try:
                factory = ep.load()
            except BaseException as exc:  # a plugin must not take cachetop down, whatever it raises
                if isinstance(exc, KeyboardInterrupt):
                    raise
                reg.errors.append(PluginError(origin, f"{type(exc).__name__}: {exc}", kind, ep.name))
                continue
            reg.add(Plugin(kind, ep.name, origin, factory, _describe(factory)))


def _load_file(path: Path, reg: Registry) -> None:
    module_name = f"cachetop_plugin_{abs(hash(str(path.resolve())))}_{path.stem}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError("not a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        reg.errors.append(PluginError(str(path), _exc_text(exc, path)))
        return
    found = False
    for kind, dict_name in FILE_DICTS.items():
        table = getattr(module, dict_name, None)
        if table is None:
            continue
        found = True
        if not isinstance(table, Mapping):
            reg.errors.append(PluginError(str(path), f"{dict_name} must be a dict of name -> factory"))
            continue
        for name, factory in table.items():
            reg.add(Plugin(kind, str(name), str(path), factory, _describe(factory)))
    if not found:
        # Helpers next to plugins are fine; only say so, so a typo in WARMERS is noticed.
        reg.errors.append(PluginError(str(path), "defines none of WARMERS, NOTIFIERS, BACKENDS (ignored)"))


def _exc_text(exc: BaseException, path: Path) -> str:
    if isinstance(exc, SyntaxError):
        return f"syntax error at line {exc.lineno}: {exc.msg}"
    if isinstance(exc, SystemExit):
        return f"called exit({exc.code}) while loading"
    tb = exc.__traceback__
    line = None
    while tb is not None:  # the deepest frame in the plugin file says where it failed
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" (line {line})" if line else ""
    return f"{type(exc).__name__}: {exc}{where}"


def discover(plugin_paths: Sequence[Path] = (), *, use_entry_points: bool = True) -> Registry:
    reg = Registry()
    _load_builtins(reg)
    if use_entry_points:
        _load_entry_points(reg)
    for folder in plugin_paths:
        if not folder.is_dir():
            reg.errors.append(PluginError(str(folder), "plugin_paths entry is not a folder"))
            continue
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_"):
                _load_file(path, reg)
    return reg


def plugin_paths_of(config: Any) -> list[Path]:
    """plugin_paths from the config, relative to the config file's folder."""
    raw = config.sections.get("plugin_paths", ()) if config is not None else ()
    base = Path(config.path).resolve().parent if config is not None and config.path else Path.cwd()
    return [(base / Path(p).expanduser()) for p in raw]

"""Prometheus file_sd files (JSON or YAML) -> InstanceConfigs, every mistake at FILE:LINE.

A file holds a list of groups, as Prometheus's file-based service discovery reads them:

    [{"targets": ["10.0.0.5:6379", "redis://10.0.0.6:6379/2"], "labels": {"group": "checkout"}}]

Each target becomes one instance; the group's labels say how (the mapping in docs/alerts.md,
"Inventory files"): `name` names a group's one target (default: host:port[/db], or the redacted
URL for a cluster or sentinel), `group` is the first tag (the overview groups by it), `tags` a
comma-separated list of more, `kind` (redis, valkey, memcached) the scheme of a bare host:port
(default redis), `interval` and `timeout` durations, `read_only` true or false. Labels starting
with `__` are Prometheus's own and ignored; any other label becomes a tag "key=value", so
`env`, `region` and the like still select rules and filter the overview. ${VAR} in a target or
label is taken from the environment, so passwords need not be written in the file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from cachetop.engine.config import HOTKEY_SOURCES, InstanceConfig
from cachetop.engine.configfile import ConfigError, read_config_text
from cachetop.engine.targets import Target, parse_target
from cachetop.util.durations import bounded_duration

KINDS = ("redis", "valkey", "memcached")
MAPPED_LABELS = ("name", "group", "tags", "kind", "interval", "timeout", "read_only", "hotkeys")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One target read from a file, and where it was written."""

    inst: InstanceConfig
    line: int


@dataclass(frozen=True, slots=True)
class _Group:
    line: int
    targets: list[tuple[Any, int]]  # (target, line)
    labels: Any
    labels_line: int


def read_inventory_file(path: str) -> list[Entry]:
    """Every target of one file; ConfigError `path:line: what is wrong` at the first mistake."""
    text = read_config_text(path)
    groups = _yaml_groups(path, text) if path.endswith((".yaml", ".yml")) else _json_groups(path, text)
    entries: list[Entry] = []
    for group in groups:
        entries.extend(_group_entries(path, group))
    return entries


# --- JSON and YAML, with lines ---------------------------------------------------------------------


def _json_groups(path: str, text: str) -> list[_Group]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, list):
        raise ConfigError(f"{path}:1: a file_sd file is a JSON list of groups: [{_GROUP_FORM}]")
    starts = list(_element_offsets(text))
    groups = []
    for n, raw in enumerate(data):
        offset = starts[n] if n < len(starts) else 0
        line = text.count("\n", 0, offset) + 1
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}:{line}: group {n + 1} must be an object like {_GROUP_FORM}")
        _check_group_keys(path, raw, line)
        targets = raw["targets"]
        end = starts[n + 1] if n + 1 < len(starts) else len(text)
        found = []
        for target in targets:
            at = text.find(json.dumps(target), offset, end) if isinstance(target, str | int | float) else -1
            found.append((target, text.count("\n", 0, at) + 1 if at >= 0 else line))
            offset = at + 1 if at >= 0 else offset
        labels_at = text.find('"labels"', starts[n] if n < len(starts) else 0, end)
        labels_line = text.count("\n", 0, labels_at) + 1 if labels_at >= 0 else line
        groups.append(_Group(line, found, raw.get("labels"), labels_line))
    return groups


def _element_offsets(text: str) -> Iterator[int]:
    """Where each element of the top-level JSON array starts (strings skipped)."""
    depth, i, in_string = 0, 0, False
    expecting = False
    while i < len(text):
        char = text[i]
        if in_string:
            if char == "\\":
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            if depth == 1 and expecting:
                yield i
                expecting = False
            in_string = True
        elif char in "[{":
            if depth == 1 and expecting:
                yield i
                expecting = False
            depth += 1
            if depth == 1:
                expecting = True
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 1:
            expecting = True
        elif depth == 1 and expecting and not char.isspace():
            yield i
            expecting = False
        i += 1


def _yaml_groups(path: str, text: str) -> list[_Group]:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{line}: invalid YAML: {problem}") from None
    if data is None:
        return []
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        raise ConfigError(
            f"{path}:1: a file_sd file is a YAML list of groups (- targets: [...], labels: {{}})"
        )
    groups = []
    for raw, node in zip(data, root.value, strict=True):
        line = node.start_mark.line + 1
        if not isinstance(raw, dict) or not isinstance(node, yaml.MappingNode):
            raise ConfigError(f"{path}:{line}: each group must be a mapping with targets and labels")
        _check_group_keys(path, raw, line)
        nodes = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        lines = [v.start_mark.line + 1 for v in nodes["targets"].value]
        targets = list(zip(raw["targets"], lines, strict=True))
        labels_node = nodes.get("labels")
        labels_line = labels_node.start_mark.line + 1 if labels_node is not None else line
        groups.append(_Group(line, targets, raw.get("labels"), labels_line))
    return groups


_GROUP_FORM = '{"targets": ["host:port", ...], "labels": {"group": "..."}}'


def _check_group_keys(path: str, raw: Mapping[str, Any], line: int) -> None:
    unknown = sorted(set(raw) - {"targets", "labels"})
    if unknown:
        raise ConfigError(f"{path}:{line}: unknown key {unknown[0]!r} in a group (allowed: labels, targets)")
    if not isinstance(raw.get("targets"), list) or not raw["targets"]:
        raise ConfigError(f'{path}:{line}: a group needs "targets": a non-empty list of host:port or URLs')


# --- groups -> instances ----------------------------------------------------------------------------


def _group_entries(path: str, group: _Group) -> list[Entry]:
    labels = _labels(path, group)
    if "name" in labels and len(group.targets) != 1:
        raise ConfigError(
            f"{path}:{group.labels_line}: the label name names one target, and this group has "
            f"{len(group.targets)} (split the group, or drop name: each target is then named by its address)"
        )
    kind = labels.get("kind", "redis")
    if kind not in KINDS:
        raise ConfigError(
            f"{path}:{group.labels_line}: kind {kind!r} is not allowed (allowed: {', '.join(KINDS)})"
        )
    entries = []
    for target, line in group.targets:
        if not isinstance(target, str) or not target.strip():
            raise ConfigError(f"{path}:{line}: a target must be a non-empty string like host:port or a URL")
        url = _expand(path, line, target.strip())
        if "://" not in url:
            url = f"{kind}://{url}"
        try:
            parsed = parse_target(url)
        except ValueError as exc:
            raise ConfigError(f"{path}:{line}: {exc}") from None
        inst = InstanceConfig(name=labels.get("name") or default_name(parsed), target=parsed)
        entries.append(Entry(_apply_labels(path, group.labels_line, inst, labels), line))
    return entries


def default_name(target: Target) -> str:
    if target.mode != "single":
        return target.redacted_url
    return f"{target.address}/{target.db}" if target.db else target.address


def _labels(path: str, group: _Group) -> dict[str, str]:
    raw = group.labels or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:{group.labels_line}: labels must be an object of strings")
    labels = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            raise ConfigError(
                f"{path}:{group.labels_line}: label {key!r} must be a string (file_sd labels are strings)"
            )
        labels[str(key)] = _expand(path, group.labels_line, value)
    return labels


def _apply_labels(path: str, line: int, inst: InstanceConfig, labels: Mapping[str, str]) -> InstanceConfig:
    where = f"{path}:{line}"
    tags: list[str] = []
    if labels.get("group"):
        tags.append(labels["group"])
    tags += [t.strip() for t in labels.get("tags", "").split(",") if t.strip()]
    tags += [
        f"{k}={v}" for k, v in sorted(labels.items()) if k not in MAPPED_LABELS and not k.startswith("__")
    ]
    inst = replace(inst, tags=tuple(dict.fromkeys(tags)), cluster=inst.target.mode == "cluster")
    for key in ("interval", "timeout"):
        if key in labels:
            try:
                inst = replace(inst, **{key: bounded_duration(labels[key], key)})
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
    if "read_only" in labels:
        if labels["read_only"] not in ("true", "false"):
            raise ConfigError(f'{where}: read_only must be "true" or "false", not {labels["read_only"]!r}')
        inst = replace(inst, read_only=labels["read_only"] == "true")
    if "hotkeys" in labels:
        if labels["hotkeys"] not in HOTKEY_SOURCES:
            raise ConfigError(
                f"{where}: hotkeys {labels['hotkeys']!r} is not allowed "
                f"(allowed: {', '.join(HOTKEY_SOURCES)})"
            )
        inst = replace(inst, hotkeys=labels["hotkeys"])
    return inst


def _expand(path: str, line: int, value: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{path}:{line}: environment variable ${{{name}}} is not set (export it)")
        return os.environ[name]

    return _ENV_RE.sub(sub, value)

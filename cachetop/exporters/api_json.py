"""The JSON of the daemon's /api/v1 (exporters/api.py) and its way back (sources/attach.py).

A snapshot is the `cachetop snapshot --json` document, and per instance a little more, so an
attached dashboard shows what a local one shows: "facts", "commands", "counters", "last_poll",
"stale" (always present) and, where the daemon samples them, "hotkeys_view" (the dashboard's
hot-key view: every field, keys as base64 in their raw bytes so an evict names the very key).
Top level: "seq" (1, 2, ... per daemon run), "interval", "daemon" and "alerts" (the alerts
panel's view, or null when the daemon runs no alerts).

Frozen dataclass trees (HotKeysView, AlertsView) are written field by field (bytes as base64,
enums as their value, tuples as lists) and read back by their type hints, so a field added to
one of them travels without an edit here. Everything goes through scrub_json: no secret the
config holds (a password in a URL, a token) can leave the daemon.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import json
import math
import types
import typing
from typing import Any, TypeVar, Union

from cachetop.model import CommandStat, InstanceMetrics, Snapshot, Status, instance_to_json
from cachetop.util.redact import json_has_secret, scrub_json

T = TypeVar("T")


def encode(value: Any) -> Any:
    """A frozen dataclass tree as plain JSON values (bytes as base64 text)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def decode(cls: type[T], data: Any) -> T:
    """encode()'s inverse for a dataclass type: unknown keys are ignored, missing ones default."""
    return typing.cast(T, _value(cls, data))


def _value(hint: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _value(options[0], data) if len(options) == 1 else data
    if origin is tuple:
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        return tuple(_value(inner, v) for v in data)
    if origin is dict:
        return dict(data)
    if hint is bytes:
        return base64.b64decode(data)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(data)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        kwargs = {
            f.name: _value(hints[f.name], data[f.name])
            for f in dataclasses.fields(hint)
            if f.init and f.name in data
        }
        return hint(**kwargs)
    return data


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # localns={}: the module's names only, so a field called `bytes` (BigKey.bytes) cannot stand
    # for the type `bytes` in another field's annotation.
    return typing.get_type_hints(cls, localns={})


def _number(value: float | int | None) -> float | int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def instance_json(inst: InstanceMetrics, views: dict[str, tuple[Any, Any]] | None = None) -> dict[str, Any]:
    """One element of "instances": the snapshot --json fields and what a dashboard needs more."""
    out = instance_to_json(inst)
    out["stale"] = inst.stale
    out["facts"] = dict(inst.facts)
    out["commands"] = {
        name: [_number(c.calls_per_sec), _number(c.usec_per_call), _number(c.failed_per_sec),
               _number(c.p50_ms), _number(c.p95_ms), _number(c.p99_ms)]
        for name, c in inst.commands.items()
    }  # fmt: skip
    out["counters"] = dict(inst.counters)
    out["last_poll"] = inst.last_poll
    view = inst.extras.get("hotkeys") if inst.extras else None
    if view is not None and dataclasses.is_dataclass(view):
        # A collector refreshes its view on its own cadence: the same object is encoded once.
        cached = views.get(inst.name) if views is not None else None
        if cached is None or cached[0] is not view:
            cached = (view, encode(view))
            if views is not None:
                views[inst.name] = cached
        out["hotkeys_view"] = cached[1]
    return out


def snapshot_json(
    snap: Snapshot, *, seq: int, interval: float, daemon: dict[str, Any], alerts: Any = None
) -> dict[str, Any]:
    """The document /api/v1/snapshot answers and each /api/v1/stream event carries."""
    return snapshot_document(snap, seq=seq, interval=interval, daemon=daemon, alerts=alerts)[0]


def snapshot_document(
    snap: Snapshot,
    *,
    seq: int,
    interval: float,
    daemon: dict[str, Any],
    alerts: Any = None,
    views: dict[str, tuple[Any, Any]] | None = None,
) -> tuple[dict[str, Any], bytes]:
    """snapshot_json's document and its compact JSON bytes, built once. Secrets are looked for
    in the text (fast) and only a document that holds one is scrubbed string by string."""
    doc: dict[str, Any] = {
        "time": round(snap.time, 3),
        "window_s": round(snap.window_s, 3),
        "instances": [instance_json(i, views) for i in snap.instances],
        "seq": seq,
        "interval": interval,
        "daemon": daemon,
        "alerts": None if alerts is None else encode(alerts),
    }
    if views:  # the cache keeps only this snapshot's views: a removed instance's goes
        shown = {i.name for i in snap.instances if i.extras and "hotkeys" in i.extras}
        for gone in views.keys() - shown:
            del views[gone]
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    if json_has_secret(text):
        doc = scrub_json(doc)  # type: ignore[assignment]
        text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    return doc, text.encode()


def instance_from_json(data: dict[str, Any], hotkeys_type: type | None = None) -> InstanceMetrics:
    """An InstanceMetrics from one element of "instances" (with hotkeys_type, e.g. HotKeysView,
    its "hotkeys_view" becomes extras["hotkeys"])."""
    extras: dict[str, Any] = {}
    if hotkeys_type is not None and data.get("hotkeys_view") is not None:
        extras["hotkeys"] = decode(hotkeys_type, data["hotkeys_view"])
    metrics = {k: v for k, v in (data.get("metrics") or {}).items() if v is not None}
    return InstanceMetrics(
        name=str(data["name"]),
        kind=str(data["kind"]),
        address=str(data["address"]),
        status=Status(data["status"]),
        error=data.get("error"),
        metrics=metrics,
        tags=tuple(data.get("tags") or ()),
        facts=dict(data.get("facts") or {}),
        memory_max_from=data.get("memory_max_from"),
        commands={k: CommandStat(*v) for k, v in (data.get("commands") or {}).items()},
        last_poll=data.get("last_poll"),
        role=data.get("role"),
        shard=data.get("shard"),
        extras=extras,
        counters=dict(data.get("counters") or {}),
        stale=bool(data.get("stale", False)),
    )


def snapshot_from_json(data: dict[str, Any], hotkeys_type: type | None = None) -> Snapshot:
    return Snapshot(
        time=float(data["time"]),
        window_s=float(data["window_s"]),
        instances=tuple(instance_from_json(i, hotkeys_type) for i in data["instances"]),
    )

"""The [keyspace] config section: defaults of `cachetop keyspace` and the horizon of
`expiry_cliff_keys`.

    [keyspace]
    cliff_horizon = "1h"   # expiry_cliff_keys: the largest cliff due within this (default 1h)
    sample = 10000         # keys that get the per-key calls
    rate = 20000           # operations per second (0: no limit)
    values = 200           # string values read per prefix for the compression figures
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from cachetop.engine.configfile import ConfigContext, KeyPath

KEYS = ("cliff_horizon", "sample", "rate", "values")


@dataclass(frozen=True, slots=True)
class KeyspaceSettings:
    cliff_horizon: float = 3600.0
    sample: int = 10_000
    rate: float = 20_000.0
    values: int = 200


def parse_keyspace_section(value: Any, ctx: ConfigContext) -> KeyspaceSettings:
    path: KeyPath = ("keyspace",)
    table = ctx.table(value, path)
    ctx.check_keys(table, KEYS, path)
    s = KeyspaceSettings()
    if "cliff_horizon" in table:
        s = replace(s, cliff_horizon=ctx.duration(table["cliff_horizon"], (*path, "cliff_horizon")))
    if "sample" in table:
        s = replace(s, sample=ctx.integer(table["sample"], (*path, "sample"), minimum=1))
    if "rate" in table:
        s = replace(s, rate=ctx.number(table["rate"], (*path, "rate"), minimum=0))
    if "values" in table:
        s = replace(s, values=ctx.integer(table["values"], (*path, "values"), minimum=0))
    return s


def keyspace_settings(config: Any) -> KeyspaceSettings:
    found = getattr(config, "sections", {}).get("keyspace")
    return found if isinstance(found, KeyspaceSettings) else KeyspaceSettings()

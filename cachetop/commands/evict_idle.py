"""`cachetop evict --idle-over`: the duration as the server counts it, and the memcached runner."""

from __future__ import annotations

import argparse
import math
import threading
from collections.abc import Callable

from cachetop.actions.audit import pattern_field
from cachetop.actions.evict import EvictResult
from cachetop.actions.memcached_idle import MemcachedIdleEvictor
from cachetop.engine.config import Config, InstanceConfig
from cachetop.engine.configfile import ConfigError
from cachetop.util.durations import parse_duration
from cachetop.util.safe_text import display_key

POOL = "pool of"  # a memcached pool's label: "pool of 3 memcached servers"


def idle_over(args: argparse.Namespace) -> int | None:
    """--idle-over in whole seconds, rounded up (OBJECT IDLETIME counts whole seconds)."""
    if args.idle_over is None:
        return None
    try:
        seconds = parse_duration(args.idle_over)
    except ValueError as exc:
        raise ConfigError(f"--idle-over: {exc}") from None
    if seconds < 1:
        raise ConfigError(
            f"--idle-over: {display_key(args.idle_over, 40)!r} is under 1s "
            "(the server counts idle time in whole seconds)"
        )
    return math.ceil(seconds)


def memcached_idle(
    args: argparse.Namespace,
    config: Config,
    instances: list[InstanceConfig],
    cancel: threading.Event,
    rate: float,
    idle_over_s: int,
) -> tuple[str, dict[str, object], Callable[..., EvictResult]]:
    """Every item of the pool idle for idle_over_s (the LRU crawler's metadump, per server)."""
    if args.prefix:
        raise ConfigError("--prefix is for Redis/Valkey; on memcached give a glob with --pattern")
    pattern = (args.pattern or "*").encode()
    label = instances[0].name if len(instances) == 1 else f"{POOL} {len(instances)} memcached servers"
    mode = "invalidate" if args.invalidate else "delete"

    def run(dry_run: bool, progress: Callable[[EvictResult], None]) -> EvictResult:
        evictor = MemcachedIdleEvictor(
            [i.target for i in instances],
            idle_over_s=idle_over_s,
            pattern=pattern,
            mode=mode,
            timeout=config.timeout_of(instances[0]),
            rate=rate,
            cancel=cancel,
            progress=progress,
        )
        return evictor.run_idle(dry_run=dry_run)

    what = dict(pattern_field(pattern)) | {"idle_over_s": idle_over_s, "mode": mode}
    return label, what, run

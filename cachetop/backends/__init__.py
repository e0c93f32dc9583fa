"""One module per protocol. Backends return raw cumulative counters; they know nothing of windows."""

from __future__ import annotations

from cachetop.backends.base import Backend, BackendError
from cachetop.engine.config import InstanceConfig


def make_backend(inst: InstanceConfig, timeout: float) -> Backend:
    if inst.target.kind == "memcached":
        from cachetop.backends.memcached import MemcachedBackend

        return MemcachedBackend(inst, timeout)
    from cachetop.backends.redis import RedisBackend

    return RedisBackend(inst, timeout)


__all__ = ["Backend", "BackendError", "make_backend"]

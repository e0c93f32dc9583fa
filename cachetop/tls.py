"""TLS for Redis and Valkey polls: make redis-py use cachetop's own verified SSLContext.

backends/redis.py builds an `ssl.SSLContext` from the instance's CA file, client certificate and
key (verification on unless `tls_verify = false`) and hands it to the connection pool as
`ssl_context`, a keyword redis-py 8.1's SSLConnection does not take (TypeError on connect).
`use_tls_context` moves that context to where redis-py looks for it: each connection's
RedisSSLContext, whose get() returns a context already set. The probe takes the same context
directly. The lasting fix belongs in backends/redis.py (see docs/fleets.md, "TLS").
"""

from __future__ import annotations

import ssl
from typing import Any


def use_tls_context(backend: Any) -> Any:
    """Fixes up a RedisBackend built for a TLS target; returns it (unchanged for anything else)."""
    client = getattr(backend, "_client", None)
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return backend
    context = pool.connection_kwargs.pop("ssl_context", None)
    if not isinstance(context, ssl.SSLContext):
        return backend
    base: type = pool.connection_class

    class VerifiedConnection(base):  # type: ignore[misc,valid-type]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.ssl_context.context = context

    pool.connection_class = VerifiedConnection
    return backend

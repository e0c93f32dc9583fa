"""How cachetop opens any redis-py connection: the poller's, the hot-key sampler's, cluster
discovery's, the detail view's and the actions'. One place, so every connection is:

- named `cachetop…` (CLIENT LIST shows it, and the hot-key sampler leaves it out),
- quiet: RESP2, no CLIENT SETINFO (an error reply on Redis < 7.2) and no maintenance
  notifications handshake, so it never adds to the error counters we report,
- never retried behind our back (redis-py 8 retries connects with backoff by default),
- verified TLS with the instance's CA, client certificate and key.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry as SyncRetry

from cachetop.config import InstanceConfig


def tls_kwargs(inst: InstanceConfig) -> dict[str, Any]:
    """redis-py's own TLS arguments: certificates are verified unless tls_verify = false."""
    if not inst.target.tls:
        return {}
    return {
        "ssl_ca_certs": inst.tls_ca_file,
        "ssl_certfile": inst.tls_cert_file,
        "ssl_keyfile": inst.tls_key_file,
        "ssl_cert_reqs": "required" if inst.tls_verify else "none",
        "ssl_check_hostname": inst.tls_verify,
    }


def connection_kwargs(
    inst: InstanceConfig,
    timeout: float,
    name: str,
    *,
    host: str | None = None,
    port: int | None = None,
    db: int | None = None,
    auth: bool = True,
) -> dict[str, Any]:
    """Keyword arguments for a redis-py client or connection pool (sync or asyncio)."""
    target = inst.target
    return {
        "host": host or target.host,
        "port": port or target.port,
        "db": target.db if db is None else db,
        "username": target.username if auth else None,
        "password": target.password if auth else None,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "client_name": name,
        "driver_info": None,
        "protocol": 2,
        **tls_kwargs(inst),
    }


def async_client(inst: InstanceConfig, timeout: float, name: str, **kwargs: Any) -> Any:
    """An asyncio client; pass single_connection_client=True, decode_responses=True... as needed."""
    import redis.asyncio as aioredis

    where = {k: kwargs.pop(k) for k in ("host", "port", "db", "auth") if k in kwargs}
    return aioredis.Redis(
        **connection_kwargs(inst, timeout, name, **where),
        ssl=inst.target.tls,
        retry=AsyncRetry(NoBackoff(), 0),
        **kwargs,
    )


def sync_client(inst: InstanceConfig, timeout: float, name: str, **kwargs: Any) -> Any:
    """A blocking client, for the actions (evict, warm) that run in a thread."""
    import redis

    where = {k: kwargs.pop(k) for k in ("host", "port", "db", "auth") if k in kwargs}
    return redis.Redis(
        **connection_kwargs(inst, timeout, name, **where),
        ssl=inst.target.tls,
        retry=SyncRetry(NoBackoff(), 0),
        **kwargs,
    )

"""A database number beyond the server's range: SELECT refuses it, and the reason says how many
databases the server has, so the fix is obvious ("db 99 does not exist: this server has 16
databases (0-15)").

The server's own answer decides (the SELECT every connection to a /db target sends), never a
guess: CONFIG GET databases is asked only afterwards, for the message, and may be refused on
managed services (CONFIG renamed or ACL-denied); the reason then says only that the db is missing.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from cachetop.backends.redis_client import async_client, sync_client
from cachetop.engine.config import InstanceConfig

# Redis' and Valkey's reply to SELECT with a number >= `databases`.
OUT_OF_RANGE = "db index is out of range"
CLIENT_NAME = "cachetop-dbcheck"


def is_db_out_of_range(exc: BaseException) -> bool:
    return OUT_OF_RANGE in str(exc).lower()


def db_missing_reason(db: int, databases: int | None) -> str:
    if databases is None:
        return f"db {db} does not exist on this server (SELECT {db}: DB index is out of range)"
    plural = "database" if databases == 1 else "databases"
    return f"db {db} does not exist: this server has {databases} {plural} (0-{databases - 1})"


def parse_databases(reply: Any) -> int | None:
    """CONFIG GET databases -> 16; None for an empty or odd reply (CONFIG renamed, a proxy...)."""
    if isinstance(reply, dict):
        values = list(reply.values())
    elif isinstance(reply, list | tuple) and len(reply) == 2:
        values = [reply[1]]
    else:
        return None
    raw = values[0] if values else None
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
    return int(text) if text.isdigit() and int(text) > 0 else None


async def count_databases(inst: InstanceConfig, timeout: float) -> int | None:
    """The server's `databases`, asked on a short-lived db-0 connection; None when refused."""
    client = async_client(inst, timeout, CLIENT_NAME, db=0, single_connection_client=True)
    try:
        return parse_databases(await client.execute_command("CONFIG", "GET", "databases"))
    except (RedisError, OSError):
        return None
    finally:
        await client.aclose()


def count_databases_sync(inst: InstanceConfig, timeout: float) -> int | None:
    """count_databases for the actions, which run in a thread."""
    try:
        client = sync_client(inst, timeout, CLIENT_NAME, db=0, single_connection_client=True)
    except (RedisError, OSError):
        return None
    try:
        return parse_databases(client.execute_command("CONFIG", "GET", "databases"))
    except (RedisError, OSError):
        return None
    finally:
        client.close()

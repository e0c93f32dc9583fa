"""The redis-py internals cachetop relies on, pinned: an upgrade that moves one fails here, by name,
instead of silently counting our own traffic as the server's (tests/integration/test_footprint.py
would then see a few ops/s on an idle server) or dropping the reply caps.

The supported range is in pyproject.toml (`redis[hiredis]>=6.0,<9`) with the reason for each bound.
"""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import redis
import redis.asyncio as aioredis
from packaging.requirements import Requirement
from redis._parsers.hiredis import _AsyncHiredisParser, _HiredisParser
from redis.asyncio.connection import Connection

from cachetop.backends.redis_client import _counting_class
from cachetop.backends.reply_cap import CappedAsyncParser, CappedParser

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def redis_requirement() -> Requirement:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return next(Requirement(d) for d in deps if Requirement(d).name == "redis")


def test_the_installed_redis_py_is_in_the_supported_range() -> None:
    requirement = redis_requirement()
    assert str(requirement.specifier) == "<9,>=6.0"
    assert requirement.specifier.contains(redis.__version__), redis.__version__


def test_the_asyncio_handshake_goes_through_on_connect_check_health() -> None:
    """backends/redis.py counts the poll connection's handshake (HELLO, CLIENT SETNAME, SELECT) by
    overriding it; 5.x connected through on_connect alone, and the count was lost."""
    assert inspect.iscoroutinefunction(Connection.on_connect_check_health)
    assert "self.on_connect_check_health(" in inspect.getsource(Connection.connect_check_health)


def test_the_capped_parsers_wrap_the_reader_that_on_connect_makes() -> None:
    """backends/reply_cap.py subclasses the private hiredis parsers and wraps `self._reader`, which
    their on_connect creates, so that every reply is charged before it is parsed."""
    for base, capped in ((_AsyncHiredisParser, CappedAsyncParser), (_HiredisParser, CappedParser)):
        assert capped.__mro__[1] is base
        assert "self._reader = hiredis.Reader(" in inspect.getsource(base.on_connect)
        assert "read_response" in vars(base)


def test_the_counting_client_overrides_the_send_and_parse_step() -> None:
    """backends/redis_client.py sends each command in one write with a counting CLIENT SETNAME by
    overriding Redis._send_command_parse_response, which execute_command calls for every command."""
    params = list(inspect.signature(aioredis.Redis._send_command_parse_response).parameters)
    assert params == ["self", "conn", "command_name", "args", "options"]
    assert "_send_command_parse_response" in inspect.getsource(aioredis.Redis.execute_command)
    counting = _counting_class(lambda command, n: None, None, "cachetop")  # type: ignore[arg-type]
    assert "_send_command_parse_response" in vars(counting)

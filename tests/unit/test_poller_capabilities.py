"""A Poller asks a backend's capability Protocols once per backend class, not once per instance:
a runtime-Protocol isinstance costs ~30 µs, and a 10,000-instance fleet builds 10,000 pollers
before its first frame. The answers stay those of isinstance itself."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from cachetop.backends import make_backend
from cachetop.backends.capabilities import FollowsMaster, HasDetailCadence
from cachetop.engine import poller as poller_module
from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.engine.poller import Poller, capabilities_of
from cachetop.engine.sentinel import SentinelBackend


def _inst(name: str, url: str) -> InstanceConfig:
    return InstanceConfig(name=name, target=parse_target(url))


def _poller(backend: Any) -> Poller:
    return Poller(
        backend.inst,
        backend,
        interval=1.0,
        timeout=1.0,
        window_s=10.0,
        clock=lambda: 0.0,
        wall=lambda: 0.0,
        poll_slots=contextlib.nullcontext(),
    )


def test_answers_are_isinstance_on_each_protocol() -> None:
    redis = make_backend(_inst("r", "redis://127.0.0.1:1/0"), 1.0)
    memcached = make_backend(_inst("m", "memcached://127.0.0.1:1"), 1.0)
    sentinel = SentinelBackend(_inst("s", "redis-sentinel://127.0.0.1:1/main"), 1.0, make_backend)
    for backend in (redis, memcached, sentinel):
        expected = (isinstance(backend, FollowsMaster), isinstance(backend, HasDetailCadence))
        assert capabilities_of(backend) == expected
    assert capabilities_of(redis) == (False, True)
    assert capabilities_of(sentinel) == (True, True)


def test_a_thousand_pollers_ask_each_protocol_once(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[type] = []

    def counting_isinstance(obj: object, kind: Any) -> bool:
        asked.append(kind)
        return isinstance(obj, kind)

    monkeypatch.setattr(poller_module, "_CAPABILITIES", {})
    monkeypatch.setattr(poller_module, "isinstance", counting_isinstance, raising=False)
    pollers = [
        _poller(make_backend(_inst(f"r{i}", f"redis://127.0.0.1:1/{i % 16}"), 1.0)) for i in range(1000)
    ]
    assert asked.count(FollowsMaster) == 1 and asked.count(HasDetailCadence) == 1
    # The cadence still reaches every backend (set at start, and every poll while a view looks).
    pollers[7].want_detail(True)
    assert pollers[7].backend.detail_every_s == 0.0  # type: ignore[attr-defined]
    assert pollers[8].backend.detail_every_s == 5.0  # type: ignore[attr-defined]

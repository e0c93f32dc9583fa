"""TLS with verification on (a test CA from trustme), a wrong CA, and ACL users, on real servers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import redis as redis_py
import trustme

from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.engine.monitor import Monitor
from cachetop.model import Status
from cachetop.servers import LocalServer, free_port
from tests.monitoring import fast_config


@pytest.fixture
def tls_redis(tmp_path: Path, make_redis: Callable[..., LocalServer]) -> tuple[LocalServer, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    for i, pem in enumerate(cert.cert_chain_pems):
        pem.write_to_path(str(cert_file), append=i > 0)
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    server = make_redis(
        *("--port", "0", "--tls-port", str(port)),
        *("--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file)),
        *("--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "no"),
        port=port,
    )
    return server, ca_file


def tls_config(port: int, ca_file: Path | None, **inst_fields: object):  # type: ignore[no-untyped-def]
    config = fast_config(f"rediss://127.0.0.1:{port}")
    inst: InstanceConfig = replace(config.instances[0], tls_ca_file=str(ca_file) if ca_file else None)
    return replace(config, instances=(replace(inst, **inst_fields),))


async def test_tls_with_verification_on_polls_and_probes(tls_redis: tuple[LocalServer, Path]) -> None:
    server, ca_file = tls_redis
    config = tls_config(server.port, ca_file)
    assert config.instances[0].tls_verify is True  # the default
    async with Monitor(config) as mon:
        await mon.wait_snapshot(lambda s: s.instances[0].metrics.get("latency_p50_ms") is not None, 10)
        await mon.wait_polls(mon.pollers[0].polls + 3)
        snap = mon.snapshot()
    inst = snap.instances[0]
    assert (inst.status, inst.error, inst.facts["version"]) == (Status.UP, None, "7.0.15")
    assert inst.metrics["ops_per_sec"] == 0.0  # our own TLS polls and probes are not counted


async def test_wrong_ca_is_refused_with_a_clear_error(
    tls_redis: tuple[LocalServer, Path], tmp_path: Path
) -> None:
    server, _ = tls_redis
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    async with Monitor(tls_config(server.port, other_ca)) as mon:
        snap = await mon.wait_snapshot(lambda s: s.instances[0].status != Status.UNKNOWN, 10)
    inst = snap.instances[0]
    assert (inst.status, inst.error) == (
        Status.DOWN,
        "TLS certificate not trusted (self-signed certificate in certificate chain)",
    )
    # Plain TCP against a TLS port is not mistaken for a server that answers.
    async with Monitor(fast_config(f"redis://127.0.0.1:{server.port}")) as mon:
        plain = await mon.wait_snapshot(lambda s: s.instances[0].status != Status.UNKNOWN, 10)
    assert plain.instances[0].status == Status.DOWN


async def test_acl_user_right_and_wrong_password(redis: LocalServer) -> None:
    admin = redis_py.Redis(port=redis.port)
    admin.execute_command(
        "ACL", "SETUSER", "watcher", "on", ">s3cret-pw", "+info", "+ping", "+client", "+latency"
    )
    admin.close()
    good = parse_target(f"redis://watcher:s3cret-pw@127.0.0.1:{redis.port}")
    bad = replace(good, password="wrong-pw")
    config = fast_config(redis.url)
    config = replace(
        config,
        instances=(InstanceConfig(name="good", target=good), InstanceConfig(name="bad", target=bad)),
    )
    async with Monitor(config) as mon:
        snap = await mon.wait_snapshot(lambda s: all(i.status != Status.UNKNOWN for i in s.instances), 10)
    by_name = {i.name: i for i in snap.instances}
    assert (by_name["good"].status, by_name["good"].error) == (Status.UP, None)
    assert (by_name["bad"].status, by_name["bad"].error) == (
        Status.AUTH_FAILED,
        "auth failed (check username and password)",
    )
    assert "wrong-pw" not in repr(snap) and "s3cret-pw" not in repr(snap)


async def test_connections_killed_by_the_server_are_reopened(tls_redis: tuple[LocalServer, Path]) -> None:
    # A server restart, an idle timeout or a load balancer drops TLS connections: a stream ends
    # with EOFError rather than OSError, and polling must go on all the same.
    server, ca_file = tls_redis
    config = tls_config(server.port, ca_file)
    async with Monitor(config) as mon:
        await mon.wait_snapshot(lambda s: s.instances[0].metrics.get("latency_p50_ms") is not None, 10)
        admin = redis_py.Redis(port=server.port, ssl=True, ssl_ca_certs=str(ca_file), driver_info=None)
        assert admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 2
        admin.close()
        polls = mon.pollers[0].polls
        await mon.wait_polls(polls + 4, timeout=10)
        probes_before = mon.pollers[0].backend._probe.connects
        await mon.wait_polls(mon.pollers[0].polls + 2, timeout=10)
        snap = mon.snapshot()
    assert snap.instances[0].status == Status.UP
    assert probes_before >= 2  # the probe connection was opened again

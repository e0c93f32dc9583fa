"""The daemon's /api/v1 (issue 18) against real servers: tokens, TLS, secrets, actions, recording.

The daemon is the real console script (tests/api_daemon.py); streams and catch-up are in
test_api_streams.py."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis as redis_py
import trustme

from cachetop.servers import LocalServer
from cachetop.sources.attach import AttachSource
from cachetop.sources.link import RemoteActionError
from tests.api_daemon import start_api_daemon
from tests.conftest import until

PATHS = ("snapshot", "stream", "hotkeys", "alerts", "recording")


def test_every_api_path_refuses_a_missing_or_wrong_token_and_leaks_no_secret(
    tmp_path: Path, make_redis: object
) -> None:
    password = "s3cret-redis-pw-4711"
    server: LocalServer = make_redis("--requirepass", password)  # type: ignore[operator]
    url = f"redis://:{password}@127.0.0.1:{server.port}"
    rule = (
        '[[rule]]\nname = "low-hit"\nmetric = "hit_ratio"\nop = "<"\nthreshold = 90\nseverity = "critical"\n'
    )
    daemon = start_api_daemon(tmp_path, {"cache-a": url}, extra_toml=rule)
    try:
        for path in PATHS:
            status, doc = daemon.request(f"/api/v1/{path}", token=None)
            assert status == 401 and set(doc) == {"error"} and "no token" in doc["error"], (path, doc)
            status, doc = daemon.request(f"/api/v1/{path}", token="not-the-token-0123456789")
            assert status == 401 and doc == {"error": "wrong token: the daemon refused it (401)"}, path
        body = {"instance": "cache-a", "keys": [], "dry_run": True}
        status, doc = daemon.request("/api/v1/actions/evict", token="x" * 32, method="POST", body=body)
        assert status == 401 and set(doc) == {"error"}
        snap = daemon.wait_snapshot(what=lambda d: d["instances"][0]["status"] == "up")
        assert [i["name"] for i in snap["instances"]] == ["cache-a"]
        assert snap["seq"] >= 1 and snap["interval"] == 0.5 and snap["daemon"]["actions"] is True
        # The daemon's rules travel, so an attached dashboard colours values as the daemon alerts.
        (low_hit,) = snap["daemon"]["rules"]
        assert (low_hit["name"], low_hit["op"], low_hit["threshold"], low_hit["severity"]) == (
            "low-hit",
            "<",
            90,
            "critical",
        )
        assert "channels" not in low_hit and "where" not in low_hit
        status, raw = daemon.request("/api/v1/snapshot")
        text = json.dumps(raw)
        assert status == 200 and password not in text and daemon.token not in text
        assert daemon.action_token and daemon.action_token not in text
    finally:
        daemon.stop()
    log = daemon.stderr.read_text()
    assert "refused a request" in log and daemon.token not in log and password not in log


def test_tls_serves_api_and_metrics_to_a_client_that_trusts_the_ca(
    tmp_path: Path, redis: LocalServer
) -> None:
    ca = trustme.CA()
    daemon = start_api_daemon(tmp_path, {"r": redis.url}, tls=ca)
    try:
        assert daemon.url.startswith("https://")
        snap = daemon.wait_snapshot()
        assert snap["instances"][0]["name"] == "r"
        context = ssl.create_default_context(cafile=str(daemon.ca_file))
        metrics = urllib.request.urlopen(f"{daemon.url}/metrics", context=context, timeout=5).read()
        assert b"cachetop_up{" in metrics
        with pytest.raises(urllib.error.URLError):  # no certificate check passes without the CA
            urllib.request.urlopen(f"{daemon.url}/metrics", timeout=5)
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is not served
            urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/metrics", timeout=5).read()

        async def attach() -> tuple[str, str | None]:
            good = AttachSource(daemon.url, daemon.token, ca_file=str(daemon.ca_file))
            bad = AttachSource(daemon.url, daemon.token)
            await good.start()
            await bad.start()
            try:
                snap = await good.wait_snapshot(timeout=10)
                await until(
                    lambda: bad.link_problem and "certificate" in bad.link_problem, 10, "a TLS refusal"
                )
                return snap.instances[0].name, bad.link_problem
            finally:
                await good.stop()
                await bad.stop()

        name, problem = asyncio.run(attach())
        assert name == "r" and problem is not None and "--ca-file" in problem
    finally:
        daemon.stop()


def test_evict_through_the_api_removes_exactly_the_dry_runs_keys_and_is_audited(
    tmp_path: Path, redis: LocalServer
) -> None:
    client = redis_py.Redis(port=redis.port)
    for key in ("cart:1", "cart:2", "cart:3", "keep:1"):
        client.set(key, "v")
    daemon = start_api_daemon(tmp_path, {"r": redis.url})
    assert daemon.action_token
    act = {"X-Cachetop-Action-Token": daemon.action_token}
    keys = [base64.b64encode(k).decode() for k in (b"cart:1", b"cart:2", b"cart:3", b"cart:gone")]
    evict = "/api/v1/actions/evict"
    try:
        body = {"instance": "r", "keys": keys, "dry_run": True}
        status, doc = daemon.request(evict, method="POST", body=body)
        assert status == 403 and "no action token" in doc["error"]
        status, doc = daemon.request(
            evict, method="POST", body=body, headers={"X-Cachetop-Action-Token": "x" * 32}
        )
        assert status == 403 and doc == {"error": "refused: wrong action token"}
        assert client.dbsize() == 4
        status, plan = daemon.request(evict, method="POST", body=body, headers=act)
        assert status == 200 and plan["matched"] == 3 and "would evict" in plan["summary"]
        assert client.dbsize() == 4  # a dry run removes nothing
        status, done = daemon.request(
            evict, method="POST", body={"plan": plan["plan"], "confirm": True}, headers=act
        )
        assert status == 200 and (done["matched"], done["evicted"], done["complete"]) == (3, 3, True)
        assert sorted(client.keys()) == [b"keep:1"]
        status, _ = daemon.request(
            evict, method="POST", body={"plan": plan["plan"], "confirm": True}, headers=act
        )
        assert status == 409  # a plan runs once
    finally:
        daemon.stop()
    audit = [
        json.loads(line) for line in (tmp_path / "daemon-state" / "audit.jsonl").read_text().splitlines()
    ]
    outcomes = [(e["source"], e["outcome"], e.get("evicted")) for e in audit]
    assert outcomes == [("api", "intent", None), ("api", "done", 3)]
    assert audit[1]["instance"] == "r" and audit[1]["viewer"].startswith("127.0.0.1:")


def test_a_read_only_daemon_refuses_an_attached_evict_and_audits_the_refusal(
    tmp_path: Path, redis: LocalServer
) -> None:
    client = redis_py.Redis(port=redis.port)
    client.set("cart:1", "v")
    daemon = start_api_daemon(tmp_path, {"r": redis.url}, extra_args=["--read-only"])
    try:
        body = {"instance": "r", "keys": [base64.b64encode(b"cart:1").decode()], "dry_run": True}
        headers = {"X-Cachetop-Action-Token": str(daemon.action_token)}
        status, doc = daemon.request("/api/v1/actions/evict", method="POST", body=body, headers=headers)
        assert status == 403 and "--read-only" in doc["error"]

        async def attached() -> tuple[bool, str, str]:
            source = AttachSource(daemon.url, daemon.token, action_token=daemon.action_token)
            await source.start()
            try:
                await source.wait_snapshot(timeout=10)
                try:
                    await source.evict_dry_run("r", {"keys": body["keys"]})
                    refused = ""
                except RemoteActionError as exc:
                    refused = str(exc)
                return source.can_act, source.read_only_reason, refused
            finally:
                await source.stop()

        can_act, reason, refused = asyncio.run(attached())
        assert not can_act and reason == "read-only: the daemon runs with --read-only"
        assert refused.startswith("refused: cachetop runs with --read-only")
    finally:
        daemon.stop()
    assert client.exists("cart:1") == 1
    audit = [
        json.loads(line) for line in (tmp_path / "daemon-state" / "audit.jsonl").read_text().splitlines()
    ]
    assert [(e["source"], e["outcome"]) for e in audit] == [("api", "refused")] * 2  # HTTP, then attached


def test_the_daemons_recording_is_served_for_replay(tmp_path: Path, redis: LocalServer) -> None:
    from cachetop.exporters.recorder import Recording

    daemon = start_api_daemon(
        tmp_path, {"r": redis.url}, extra_args=["--record", str(tmp_path / "day.ctrec")]
    )
    try:
        daemon.wait_snapshot(what=lambda d: d["seq"] >= 3)
        status, data = daemon.request("/api/v1/recording")
        status_without, _ = daemon.request("/api/v1/recording", token=None)
    finally:
        daemon.stop()
    assert status == 200 and data.startswith(b"SQLite format 3") and status_without == 401
    copy = tmp_path / "copy.ctrec"
    copy.write_bytes(data)
    recording = Recording.open(copy)
    try:
        assert len(recording) >= 2 and [i.name for i in recording[0].instances] == ["r"]
    finally:
        recording.close()

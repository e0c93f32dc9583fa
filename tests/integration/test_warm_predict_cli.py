"""`cachetop warm --predict` on a real Redis: it writes only the predicted keys the source plugin gave
values for, through the usual locks and audit, and refuses in --read-only."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from cachetop.cli import main
from cachetop.history.bucket import BucketRecord
from cachetop.history.config import HistorySettings
from cachetop.history.store import HistoryStore

HOUR = 3600.0


def setup_history(tmp_path: Path, port: int) -> Path:
    state = tmp_path / "state"
    settings = HistorySettings(bucket=HOUR, season=24)
    store = HistoryStore(state, settings)
    now = int(time.time() // HOUR)
    predicted = tuple((f"page:a:{n}".encode(), 100 - n) for n in range(10))
    # the next hour (and the one after, should the hour turn while the test runs), on two earlier days
    for target in (now + 1, now + 2):
        for back in (24, 48):
            store.add(
                BucketRecord("shop", target - back, HOUR, predicted, ((b"page:a:*", 1000),), {"hits": 1.0})
            )
    store.add(BucketRecord("shop", now - 1, HOUR, ((b"page:z:1", 50),), ((b"page:z:*", 50),), {"hits": 1.0}))
    store.close()
    values = tmp_path / "values.jsonl"
    # the source knows only half of the predicted keys (and one key nobody predicted)
    rows = [{"key": f"page:a:{n}", "value": f"v{n}"} for n in range(5)] + [{"key": "other", "value": "x"}]
    values.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "cachetop.toml"
    config.write_text(
        f'[settings]\nstate_dir = "{state}"\n\n[[instance]]\nname = "shop"\nurl = "redis://127.0.0.1:{port}"\n\n'
        '[history]\nbucket = "1h"\nseason = 24\n'
    )
    return config


def warm_predict_args(config: Path, tmp_path: Path) -> list[str]:
    """`cachetop warm --predict` with the file strategy over the values setup_history wrote."""
    return [
        "warm",
        "-c",
        str(config),
        "--predict",
        "--strategy",
        "file",
        "--file",
        str(tmp_path / "values.jsonl"),
    ]


def audit_lines(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "state" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_warm_predict_writes_only_keys_the_source_gave_values_for(
    tmp_path: Path, redis: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup_history(tmp_path, redis.port)
    args = warm_predict_args(config, tmp_path)
    assert main([*args, "--top", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["planned"] == 10 and result["written"] == 5 and result["empty"] == 5
    client = redis_client(redis.port)
    assert sorted(client.keys("*")) == [f"page:a:{n}".encode() for n in range(5)]  # no lock left behind
    assert [client.get(f"page:a:{n}") for n in range(5)] == [f"v{n}".encode() for n in range(5)]
    ttl = client.ttl("page:a:0")
    assert 2 * HOUR - 60 < ttl <= 2 * HOUR  # it outlives the bucket it was warmed for, then goes
    (entry,) = audit_lines(tmp_path)
    assert entry["action"] == "warm" and entry["outcome"] == "done" and entry["what"]["predict"] is True
    assert entry["written"] == 5 and entry["what"]["history_buckets"] == 5


def test_warm_predict_refuses_in_read_only(
    tmp_path: Path, redis: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup_history(tmp_path, redis.port)
    args = warm_predict_args(config, tmp_path)
    assert main([*args, "--read-only"]) == 3
    assert "refused: cachetop runs with --read-only" in capsys.readouterr().err
    assert redis_client(redis.port).dbsize() == 0
    (entry,) = audit_lines(tmp_path)
    assert entry["outcome"] == "refused"


def test_warm_predict_without_history_says_where_it_looked(
    tmp_path: Path, redis: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = setup_history(tmp_path, redis.port)
    (tmp_path / "state" / "history.sqlite3").unlink()
    args = warm_predict_args(config, tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "warm --predict: no history of shop with 1h buckets in" in err and "Traceback" not in err
    assert redis_client(redis.port).dbsize() == 0


def redis_client(port: int) -> redis.Redis:
    return redis.Redis(port=port)


def test_the_daemons_scheduled_warm_refuses_a_read_only_instance_and_audits_it(
    tmp_path: Path, redis: Any
) -> None:
    from dataclasses import replace

    from cachetop.engine.config import load_config
    from cachetop.history.config import WarmAheadSettings
    from cachetop.history.warm_job import run_scheduled_warm

    config = load_config(setup_history(tmp_path, redis.port))
    warm = WarmAheadSettings(predict=True, strategy="file", options={"path": str(tmp_path / "values.jsonl")})
    settings = HistorySettings(bucket=HOUR, season=24)
    keys = [f"page:a:{n}".encode() for n in range(10)]
    locked = replace(config.instances[0], read_only=True)
    assert run_scheduled_warm(config, locked, warm, settings, keys, 7) is None
    assert redis_client(redis.port).dbsize() == 0
    result = run_scheduled_warm(config, config.instances[0], warm, settings, keys, 8)
    assert result is not None and result.written == 5 and result.empty == 5
    refused, done = audit_lines(tmp_path)
    assert (
        refused["outcome"] == "refused" and refused["source"] == "daemon" and refused["what"]["bucket"] == 7
    )
    assert done["outcome"] == "done" and done["written"] == 5 and done["what"]["predict"] is True

"""stop() never closes the history file (or lets go of its lock) while the worker still writes:
a flush that timed out leaves the worker inside a transaction, and the close waits for it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from cachetop.engine.config import parse_config
from cachetop.engine.configfile import ConfigContext
from cachetop.history import service as service_module
from cachetop.history.bucket import BucketRecord
from cachetop.history.service import HistoryService
from cachetop.history.store import HistoryLock
from tests.conftest import until

HOUR = 3600.0


async def test_stop_closes_the_file_only_after_the_write_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "STOP_WAIT_S", 0.05)  # a flush that times out
    config = parse_config({"settings": {"state_dir": str(tmp_path)}}, ConfigContext("x.toml", ""))
    service = HistoryService(config, {})
    service.start()
    store = service.store
    assert service.writer and store is not None
    store.size_bytes()  # the file open
    inside, go_on = threading.Event(), threading.Event()
    recent = int(time.time() // HOUR) - 1

    def slow_write() -> None:  # a write held up mid-way (a long fsync on a busy disk)
        inside.set()
        go_on.wait(10)
        store.add_many([BucketRecord("a", recent, HOUR, ((b"k", 1),))])

    written: Future[None] = service._submit(slow_write)
    queued: Future[None] = service._submit(lambda: None)  # not started at stop: dropped
    assert inside.wait(5)
    await service.stop()
    # The flush timed out with the write still under way: the file is still open for it, and the
    # lock still held (no other process may start writing the same file meanwhile).
    assert store._db is not None
    assert not HistoryLock(tmp_path).held
    assert queued.cancelled()
    go_on.set()
    await until(written.done, 5, "the held-up write")
    assert written.exception() is None  # before: "Cannot operate on a closed database"
    await until(lambda: store._db is None, 5, "the file closed by the worker")
    lock = HistoryLock(tmp_path)
    assert lock.held  # released once the write was done
    lock.close()
    assert list(store.buckets("a", HOUR)) == [recent]
    store.close()

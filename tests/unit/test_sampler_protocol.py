"""Every hot-key source is a HotKeySampler, and says what it is through report(), not its class."""

from __future__ import annotations

from collections import Counter

from cachetop.engine.config import InstanceConfig, parse_target
from cachetop.hotkeys.config import HotKeySettings
from cachetop.hotkeys.memcached_watch import WatchSampler
from cachetop.hotkeys.redis_monitor import MonitorSampler
from cachetop.hotkeys.sampler import HotKeySampler, SamplerReport
from cachetop.hotkeys.scan import ThrottledScan
from cachetop.hotkeys.server_hotkeys import (
    RedisHotKeysPoller,
    ServerHotKey,
    ServerHotKeys,
    ValkeyHotKeysPoller,
)
from cachetop.hotkeys.view import HotKey
from cachetop.hotkeys.view_rows import source_status

SETTINGS = HotKeySettings(k=2, min_share=30.0, scan_budget=100)


def inst(url: str) -> InstanceConfig:
    return InstanceConfig(name="i", target=parse_target(url))


def sink(*_: object) -> None:
    return None


def test_the_four_sources_share_one_protocol() -> None:
    sources = [
        MonitorSampler(inst("redis://127.0.0.1:1"), sink),
        WatchSampler(inst("memcached://127.0.0.1:1"), sink),
        ThrottledScan(None, budget=10, tick_s=1.0, keep=5, what="freq"),
        RedisHotKeysPoller(None, 5, 1.0, 9.0),
        ValkeyHotKeysPoller(None, 1.0),
    ]
    assert all(isinstance(s, HotKeySampler) for s in sources)
    assert [s.source for s in sources] == ["monitor", "watch", "lfu", "hotkeys", "hotkeys"]
    assert [s.open_connections for s in sources] == [0, 0, 0, 0, 0]
    assert [s.own_sent for s in sources] == [Counter()] * 5
    assert [s.own_reads for s in sources] == [(0, 0)] * 5


def test_stream_sources_leave_their_rows_to_the_collector() -> None:
    monitor = MonitorSampler(inst("redis://127.0.0.1:1"), sink, max_lines=5000)
    monitor.stats.max_omem = 4096
    assert monitor.report(SETTINGS) == SamplerReport(
        "starting",
        "MONITOR 1s on / 9s off, at most 5,000 lines; server bound on its buffer: unknown",
        "ops",
        max_omem=4096,
    )
    watch = WatchSampler(inst("memcached://127.0.0.1:1"), sink)
    watch.stats.lines, watch.stats.skipped, watch.stats.long_lines = 90, 10, 2
    assert watch.report(SETTINGS) == SamplerReport(
        "starting", "2 over-long lines cut; memcached watch fetchers mutations", "ops", drop_rate=0.1
    )


def test_table_sources_hand_over_their_rows() -> None:
    scan = ThrottledScan(None, budget=10, tick_s=1.0, keep=5, what="freq")
    for key, freq in ((b"a", 3), (b"b", 9), (b"c", 5)):
        scan.table.offer(key, freq)
    scan.own_hits, scan.own_misses = 3, 1
    assert scan.own_reads == (3, 1)
    assert scan.report(SETTINGS) == SamplerReport(
        "sampling",
        "LFU counters via SCAN + OBJECT FREQ, 100 keys/s",
        "lfu_freq",
        keys=(HotKey(b"b", "b", 9, None, None), HotKey(b"c", "c", 5, None, None)),
    )
    valkey = ValkeyHotKeysPoller(None, 1.0)
    assert valkey.report(SETTINGS) == SamplerReport("sampling", "server-side HOTKEYS", "qps", keys=())
    redis8 = RedisHotKeysPoller(None, 5, 1.0, 9.0)
    assert redis8.report(SETTINGS).unit == "cpu_us"  # before the first HOTKEYS GET
    redis8.latest = ServerHotKeys(
        "net_bytes",
        (ServerHotKey(b"x", 700.0, 0.7), ServerHotKey(b"y", 200.0, 0.2), ServerHotKey(b"z", 100.0, 0.1)),
        1.0,
        True,
    )
    assert redis8.report(SETTINGS) == SamplerReport(
        "starting",
        "server-side HOTKEYS",
        "net_bytes",
        keys=(HotKey(b"x", "x", 700, None, 0.7, hot=True), HotKey(b"y", "y", 200, None, 0.2, hot=False)),
    )


def test_the_status_line_is_the_collectors_when_off_or_failing() -> None:
    report = SamplerReport("sampling", "server-side HOTKEYS", "qps")
    assert source_status("error", "ACL denies HOTKEYS", report) == ("error", "ACL denies HOTKEYS")
    assert source_status("off", None, None) == ("off", "hot keys are off for this instance")
    assert source_status("sampling", None, report) == ("sampling", "server-side HOTKEYS")
    assert source_status("starting", None, None) == ("starting", "")

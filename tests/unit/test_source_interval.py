"""The interval has one owner: the Source. `+`/`-` (Monitor.set_interval) scale every instance's
interval by one factor, per-instance intervals keep their ratio, the latency buckets follow, and
the window rule is one check with one message on the command line and in the file."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from cachetop.cli import main
from cachetop.commands.common import config_from_args
from cachetop.engine.config import load_config
from cachetop.engine.configfile import ConfigError
from cachetop.engine.monitor import Monitor
from cachetop.engine.source import Source, SourceCapabilities, Timeline
from cachetop.metrics.latency import QuantileWindow

FLEET = """\
[settings]
interval = "1s"
window = "10s"

[[instance]]
name = "fast"
url = "redis://127.0.0.1:1"

[[instance]]
name = "slow"
url = "redis://127.0.0.1:2"
interval = "5s"
"""


async def test_plus_and_minus_scale_every_interval_by_one_factor(tmp_path: Path) -> None:
    path = tmp_path / "cachetop.toml"
    path.write_text(FLEET)
    mon = Monitor(load_config(path))
    fast = mon.add_instance(mon.config.instances[0])
    slow = mon.add_instance(mon.config.instances[1])
    try:
        assert (mon.interval, fast.interval, slow.interval) == (1.0, 1.0, 5.0)
        assert (fast.latency.bucket_s, slow.latency.bucket_s) == (2.0, 5.0)  # window / 5, or the interval
        mon.set_interval(2.0)  # `+` from 1s
        assert (mon.interval, fast.interval, slow.interval) == (2.0, 2.0, 10.0)
        assert (fast.latency.bucket_s, slow.latency.bucket_s) == (2.0, 10.0)  # the buckets follow
        mon.set_interval(0.5)  # `-` twice
        assert (mon.interval, fast.interval, slow.interval) == (0.5, 0.5, 2.5)
        assert (fast.latency.bucket_s, slow.latency.bucket_s) == (2.0, 2.5)
        mon.set_interval(1.0)  # back: every instance as configured
        assert (mon.interval, fast.interval, slow.interval) == (1.0, 1.0, 5.0)
        assert mon.window_s == 10.0
        mon.set_interval(30.0)  # past the window: the window grows to hold a poll
        assert (mon.interval, fast.interval, slow.interval, mon.window_s) == (30.0, 30.0, 150.0, 30.0)
        # An instance added now (a cluster node joining) gets the same factor.
        late = mon.add_instance(replace(mon.config.instances[1], name="late"))
        assert late.interval == 150.0
    finally:
        await mon.stop()


def test_rebucket_keeps_every_probe_in_the_window() -> None:
    window = QuantileWindow(10.0, bucket_s=1.0)
    for t in range(10):
        window.add(float(t + 1), now=t + 0.5)  # one probe a second: 1 ms, 2 ms, ... 10 ms
    window.rebucket(2.0)
    assert window.bucket_s == 2.0
    assert window.count(now=9.5) == 10
    assert window.quantiles(now=9.5, qs=(0.0, 1.0)) == pytest.approx((1.0, 10.0), rel=0.01)
    window.rebucket(0.5)
    assert window.count(now=9.5) == 10


def test_monitor_and_replay_declare_what_they_can_do(tmp_path: Path) -> None:
    from cachetop.exporters.replay import ReplayPlayer

    assert Monitor.capabilities == SourceCapabilities(pause=True, refresh=True, pace=True, act=True)
    assert ReplayPlayer.capabilities == SourceCapabilities(pause=True, pace=True, step=True, seek=True)
    path = tmp_path / "cachetop.toml"
    path.write_text(FLEET)
    mon = Monitor(load_config(path))
    assert isinstance(mon, Source) and not isinstance(mon, Timeline)  # a live source: no frames


@pytest.mark.parametrize(
    ("flags", "file_text"),
    [
        (["--interval", "5s", "--window", "1s"], None),
        ([], '[settings]\ninterval = "5s"\nwindow = "1s"\n'),
    ],
    ids=["command-line", "file"],
)
def test_the_window_rule_is_one_check_with_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], file_text: str | None
) -> None:
    argv = [*flags, "redis://127.0.0.1:1"]
    if file_text is not None:
        path = tmp_path / "cachetop.toml"
        path.write_text(file_text + '[[instance]]\nname = "a"\nurl = "redis://127.0.0.1:1"\n')
        argv = ["-c", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    rule = "window (1s) must be at least interval (5s): rates need a poll at each end of the window"
    where = "--window" if file_text is None else f"{tmp_path / 'cachetop.toml'}:3"
    assert err == f"cachetop: {where}: {rule}"


def test_an_interval_flag_past_the_default_window_is_refused_not_stretched() -> None:
    args = argparse.Namespace(
        targets=["redis://127.0.0.1:1"], config=None, interval="30s", window=None, timeout=None
    )
    with pytest.raises(ConfigError) as err:
        config_from_args(args)
    rule = "window (10s) must be at least interval (30s): rates need a poll at each end of the window"
    assert str(err.value) == f"--interval: {rule}"
    args.window = "30s"
    settings = config_from_args(args).settings
    assert (settings.interval, settings.window) == (30.0, 30.0)

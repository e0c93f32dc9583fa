"""Hot keys in a fleet above 200 instances: `hotkeys = "auto"` samples nothing (a MONITOR per
instance from one process is a load nobody asked for); an instance that names a source still
gets its sampler. Real redis-server, and a closed port for the rest."""

from __future__ import annotations

from cachetop.engine.config import Config, InstanceConfig, Settings, parse_target
from cachetop.engine.live import HOTKEYS_AUTO_LIMIT, LiveSources
from cachetop.engine.monitor import Monitor
from cachetop.servers import LocalServer, free_port


async def test_above_200_instances_only_instances_that_name_a_hot_key_source_are_sampled(
    redis: LocalServer,
) -> None:
    closed = free_port()
    instances = (
        InstanceConfig(name="named", target=parse_target(redis.url), hotkeys="monitor"),
        InstanceConfig(name="auto-up", target=parse_target(redis.url)),
        *(
            InstanceConfig(name=f"down-{i:03d}", target=parse_target(f"redis://127.0.0.1:{closed}"))
            for i in range(HOTKEYS_AUTO_LIMIT - 1)
        ),
    )
    config = Config(path=None, settings=Settings(interval=1.0, window=10.0), instances=instances)
    notices: list[str] = []
    async with (
        Monitor(config) as monitor,
        LiveSources(config, monitor, hotkeys=True, alerts=False, on_notice=notices.append) as live,
    ):
        assert list(live.collectors) == ["named"]
        assert notices == [
            "hot keys: not sampled on 200 instances in a fleet of more than 200 "
            '(set hotkeys = "monitor" on an instance, or run `cachetop hotkeys NAME`)'
        ]

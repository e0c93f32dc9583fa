"""The daemon's part in a fleet of daemons: `--shard I/N`, `--list`, and [inventory] files.

    shard = parse_shard(args.shard)                     # ConfigError on a bad value (exit 2)
    config = for_shard(config, shard)                   # state_dir/shard-I-of-N
    Monitor(monitor_config(config, shard))              # this shard's [[instance]] tables
    async with watch_inventory(monitor, config, shard)  # the files' targets, kept current
    label_exporter(outputs, shard)                      # daemon_shard="I/N" on every series

Which shard owns a target is engine/shards.py (rendezvous hashing of the instance name); the
inventory is engine/inventory.py and engine/inventory_watch.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

from cachetop.engine.config import Config, InstanceConfig
from cachetop.engine.configfile import ConfigError
from cachetop.engine.inventory import Inventory
from cachetop.engine.inventory_watch import InventoryFleet, InventoryWatcher
from cachetop.engine.shards import ShardSpec
from cachetop.exporters.shard_labels import SHARD_LABEL, add_constant_labels
from cachetop.util.safe_text import display_key


def parse_shard(text: str | None) -> ShardSpec | None:
    if text is None:
        return None
    try:
        return ShardSpec.parse(text)
    except ValueError as exc:
        raise ConfigError(f"--shard {exc}") from None


def for_shard(config: Config, shard: ShardSpec | None) -> Config:
    """A sharded daemon keeps its alert outbox and history in `state_dir/shard-I-of-N`: daemons of
    one fleet may share a host and a config file, and a state dir holds one daemon."""
    if shard is None:
        return config
    state_dir = config.settings.state_dir / f"shard-{shard.index}-of-{shard.count}"
    return replace(config, settings=replace(config.settings, state_dir=state_dir))


def owned(config: Config, shard: ShardSpec | None) -> list[InstanceConfig]:
    """The targets (from [[instance]] and the inventory files) this shard polls."""
    return [i for i in config.instances if shard is None or shard.owns(i.name)]


def inventory_of(config: Config) -> Inventory | None:
    inventory = config.sections.get("inventory")
    return inventory if isinstance(inventory, Inventory) else None


def monitor_config(config: Config, shard: ShardSpec | None) -> Config:
    """The [[instance]] tables this shard owns: the inventory watcher adds the files' targets."""
    inventory = inventory_of(config)
    from_files = inventory.names() if inventory else set()
    return replace(config, instances=tuple(i for i in owned(config, shard) if i.name not in from_files))


@contextlib.asynccontextmanager
async def watch_inventory(
    fleet: InventoryFleet, config: Config, shard: ShardSpec | None
) -> AsyncIterator[InventoryWatcher | None]:
    """Adds the inventory's targets this shard owns, and follows the files until the end."""
    inventory = inventory_of(config)
    if inventory is None:
        yield None
        return
    watcher = InventoryWatcher(fleet, inventory, config, owns=shard.owns if shard else _everything)
    await watcher.start()
    task = asyncio.create_task(watcher.run(), name="inventory")
    try:
        yield watcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await watcher.close()


def _everything(name: str) -> bool:
    return True


def label_exporter(outputs: Mapping[str, Any], shard: ShardSpec | None) -> None:
    """daemon_shard="I/N" on every series the daemon's /metrics serves (none without --shard)."""
    if shard is not None and "exporter" in outputs:
        add_constant_labels(outputs["exporter"], {SHARD_LABEL: shard.label})


def list_targets(config: Config, shard: ShardSpec | None) -> int:
    """`--list`: the targets this daemon polls, `NAME  URL` per line (passwords hidden)."""
    mine = owned(config, shard)
    for inst in mine:
        print(f"{display_key(inst.name, 200)}  {display_key(inst.target.redacted_url, 200)}")
    where = f"shard {shard.label}" if shard else "this daemon"
    print(f"# {where}: {len(mine)} of {len(config.instances)} target(s)", file=sys.stderr)
    return 0

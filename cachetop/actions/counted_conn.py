"""The connections an evict or a warm opens, with what opening them sends counted as cachetop's
own traffic (actions/own_report.py): the handshake, and INFO (and CLUSTER NODES on a cluster) to
find the nodes."""

from __future__ import annotations

from typing import Any

from cachetop.actions.own_report import ActionOwnReport
from cachetop.actions.redis_nodes import Node, connect, discover_nodes
from cachetop.backends.redis_client import handshake
from cachetop.engine.config import InstanceConfig


def counted_discover(inst: InstanceConfig, timeout: float, name: str, own: ActionOwnReport) -> list[Node]:
    """The instance, or every master of its cluster (redis_nodes.discover_nodes)."""
    with own.sending() as count:
        for command, n in {**handshake(inst), "info": 1}.items():
            count(command, n)
        nodes = discover_nodes(inst, timeout, name)
        if nodes[0].slots:
            count("cluster|nodes", 1)
    return nodes


def counted_connect(
    inst: InstanceConfig, timeout: float, name: str, own: ActionOwnReport, node: Node | None = None
) -> Any:
    """One client on one connection to the instance (or to `node` of its cluster), for the whole
    action: redis-py's pipelines take a connection from the pool, not the client's single one,
    and would open (and handshake) a second. Handed to the pool, the connected one serves every
    command and pipeline."""
    with own.sending() as count:
        for command, n in handshake(inst, 0 if node is not None else None).items():
            count(command, n)
        client = connect(inst, timeout, name, node)
        own.opened(1)
    client.connection_pool.release(client.connection)
    client.connection = None
    return client

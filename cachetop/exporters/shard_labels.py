"""Labels added to every series a daemon exports: `daemon_shard="I/N"` on a sharded daemon.

With several daemons behind one Prometheus, `daemon_shard` says which daemon a series came from
without relying on the scrape's `instance` label (a daemon may move host). It is not `shard`:
that label already holds a cluster node's shard (the slots its master serves) on every
per-instance series.

    add_constant_labels(exporter, {"daemon_shard": "0/2"})
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from cachetop.exporters.prometheus import PrometheusExporter

SHARD_LABEL = "daemon_shard"


class ConstantLabels(Collector):
    """Another collector's families, each sample with `labels` added."""

    def __init__(self, inner: Collector, labels: Mapping[str, str]) -> None:
        self.inner = inner
        self.labels = dict(labels)

    def collect(self) -> Iterator[Metric]:
        for family in self.inner.collect():
            family.samples = [s._replace(labels={**s.labels, **self.labels}) for s in family.samples]
            yield family


def add_constant_labels(exporter: PrometheusExporter, labels: Mapping[str, str]) -> None:
    """Puts `labels` on every series `exporter` serves from now on."""
    if not labels:
        return
    exporter.registry.unregister(exporter.collector)
    exporter.registry.register(ConstantLabels(exporter.collector, labels))

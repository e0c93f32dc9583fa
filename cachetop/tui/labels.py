"""Names that tell rows apart on a narrow screen: cluster nodes by their own address.

Pure code (no Textual). A cluster node's instance name is `CLUSTER/host:port` (cluster.py),
and CLUSTER is the first seed's address, so every node's name starts the same way; cutting
the end at 14 columns left `127.0.0.1:7131/…` on every row. The overview shows a node's own
address and shard number instead, and elides what every node shares, not what differs.
"""

from __future__ import annotations

from collections.abc import Mapping

ELLIPSIS = "…"
SEPARATORS = ":./ "


def node_label(name: str, address: str, shard_number: int | None) -> str | None:
    """`host:port s2` for a cluster node (a name `CLUSTER/address`), None for other instances."""
    if not address or not name.endswith("/" + address) or name == "/" + address:
        return None
    return f"{address} s{shard_number}" if shard_number else address


def common_part(labels: list[str]) -> str:
    """The prefix all labels share, cut back to just before a separator so the separator stays
    visible (`127.0.0.1:7131`, `127.0.0.1:7132` share `127.0.0.1`, shown as `…:7131`). One label
    shares its host with nobody, but the host is still the part to drop first."""
    if not labels:
        return ""
    if len(labels) > 1:
        first, last = min(labels), max(labels)  # the prefix of these two is everyone's
        n = 0
        while n < min(len(first), len(last)) and first[n] == last[n]:
            n += 1
        shared = first[:n]
    else:
        shared = labels[0].rsplit(":", 1)[0] + ":"
    cut = max(shared.rfind(c) for c in SEPARATORS)
    return shared[:cut] if cut > 0 else ""


def elide_common(labels: Mapping[str, str], width: int) -> dict[str, str]:
    """labels (key -> text) fitted to `width`: when any does not fit, the shared part of all of
    them becomes `…` (all of them, so the column stays aligned)."""
    if all(len(text) <= width for text in labels.values()):
        return dict(labels)
    shared = common_part(list(labels.values()))
    if not shared:
        return dict(labels)
    return {key: ELLIPSIS + text[len(shared) :] for key, text in labels.items()}

"""The rich table `cachetop snapshot` prints. Names and server-supplied text are escaped once
(safe_text.display_key) and never read as markup."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from cachetop import format as fmt
from cachetop.model import Snapshot, Status
from cachetop.safe_text import display_key

NAME_MAX = 60  # instance names (from a config, or a cluster's node addresses) are cut here

STATUS_STYLE = {
    Status.UP: "green",
    Status.DOWN: "bold red",
    Status.AUTH_FAILED: "bold red",
    Status.LOADING: "yellow",
}


def snapshot_table(snap: Snapshot) -> RenderableType:
    table = Table(
        title=f"cachetop snapshot · window {snap.window_s:g}s",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for header in ("instance", "status", "hit", "ops/s", "p50", "p99", "mem", "err", "evict/s", "conn"):
        left = header in ("instance", "status")
        table.add_column(
            header,
            justify="left" if left else "right",
            no_wrap=True,
            overflow="ellipsis",
            min_width=None if header == "instance" else len(header),
        )
    for inst in snap.instances:
        m = inst.metrics
        status = Text(str(inst.status), style=STATUS_STYLE.get(inst.status, ""))
        mem = fmt.pct(m.get("memory_used_pct"))
        if inst.memory_max_from == "system":
            mem += "*"
        table.add_row(
            Text(display_key(inst.name, NAME_MAX)),
            status,
            fmt.pct(m.get("hit_ratio")),
            fmt.rate(m.get("ops_per_sec")),
            fmt.ms(m.get("latency_p50_ms")),
            fmt.ms(m.get("latency_p99_ms")),
            mem,
            fmt.pct(m.get("error_rate"), 2),
            fmt.rate(m.get("evictions_per_sec")),
            fmt.count(m.get("connections")),
        )
    notes: list[RenderableType] = []
    for inst in snap.instances:
        if inst.error:
            line = Text(f"{display_key(inst.name, NAME_MAX)}: ", style="bold")
            line.append(
                f"{inst.status}: {display_key(inst.error, 200)}", style=STATUS_STYLE.get(inst.status, "")
            )
            notes.append(line)
    if any(i.memory_max_from == "system" for i in snap.instances):
        notes.append(Text("* no maxmemory set: memory is shown against the host's total memory", style="dim"))
    return Group(table, *notes)

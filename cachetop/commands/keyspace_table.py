"""`cachetop keyspace` as tables: one instance's report JSON (live or saved) printed for a person.

Everything is drawn from the JSON dict, so a saved report prints the same way; key names in it
are already escaped (display_key) and go to rich as Text, never markup.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text

from cachetop.commands.render_table import Column, Output
from cachetop.util.format import duration, size
from cachetop.util.safe_text import display_key

PREFIX_ROWS = 20


def _pm(est: float, ci: list[float] | None) -> str:
    """±x% of the estimate (half the 95% interval), or "exact"."""
    if not ci or ci[1] - ci[0] <= 0:
        return "exact"
    if est <= 0:
        return f"±{(ci[1] - ci[0]) / 2:,.0f}"
    return f"±{(ci[1] - ci[0]) / 2 / est:.1%}"


def _with_ttl(ttl: dict[str, float] | None, keys: float) -> str:
    if not ttl or keys <= 0:
        return "-"
    return f"{1 - ttl.get('none', 0.0) / keys:.0%}"


def _idle_over_hour(idle: dict[str, float] | None, keys: float) -> str:
    if not idle or keys <= 0:
        return "-"
    over = sum(v for k, v in idle.items() if k not in ("lt_1m", "lt_1h"))
    return f"{over / keys:.0%}"


def _compress(c: dict[str, Any] | None) -> Text:
    if not c:
        return Text("-", style="dim")
    codec = str(c.get("codec") or "zstd")
    ratio = float(c.get(f"{codec}_ratio") or c.get("zstd_ratio") or 0.0)
    if c.get("recommend"):
        return Text(f"{codec} {ratio:.1f}x yes", style="green")
    return Text(f"{codec} {ratio:.1f}x", style="dim")


def print_report(report: dict[str, Any], out: Output, *, now: float | None = None) -> None:
    now = time.time() if now is None else now
    title = Text(f"{display_key(str(report['name']), out.name_max)}  ", style="bold")
    title.append(f"source: {report['source']}  ", style="dim")
    scanned, total = report.get("keys_scanned") or 0, report.get("keys_total")
    what = f"{scanned:,} names counted"
    if total is not None and not report.get("complete"):
        what += f" of {total:,}"
    title.append(
        f"{what}, {report['keys_sampled']:,} keys sampled, in {report['elapsed_s']:.1f} s", style="dim"
    )
    columns = [
        Column("prefix", min_width=14),
        Column("keys", right=True),
        Column("bytes", right=True),
        Column("±95%", right=True),
        Column("mean", right=True),
        Column("TTL", right=True),
        Column("idle>1h", right=True),
        Column("compress", right=True),
    ]
    rows = []
    prefixes = report.get("prefixes") or []
    for p in prefixes[:PREFIX_ROWS]:
        keys = float(p["keys_est"])
        keys_pm = _pm(keys, p.get("keys_ci95"))
        rows.append(
            [
                Text(p["prefix"]),
                f"{keys:,.0f}" + ("" if keys_pm == "exact" else f" {keys_pm}"),
                size(p["bytes_est"]),
                _pm(float(p["bytes_est"]), p.get("bytes_ci95")),
                size(p["mean_bytes"]),
                _with_ttl(p.get("ttl"), keys),
                _idle_over_hour(p.get("idle"), keys),
                _compress(p.get("compress")),
            ]
        )
    out.table(title, columns, rows)
    if len(prefixes) > PREFIX_ROWS:
        out.line(
            Text(f"  … {len(prefixes) - PREFIX_ROWS} more prefixes (--json lists them all)", style="dim")
        )
    if report.get("error"):
        out.line(Text(f"  {display_key(str(report['error']), 300)}", style="red"))
    for cliff in report.get("cliffs") or []:
        when = time.strftime("%H:%M:%S", time.localtime(cliff["at"]))
        line = Text("  expiry cliff: ", style="bold yellow")
        line.append(f"{cliff['keys_est']:,} keys at {when} (in {duration(cliff['at'] - now)}) ")
        line.append(", ".join(cliff["prefixes"][:3]))
        out.line(line)
        out.line(Text(f"    {cliff.get('advice', '')}", style="dim"))
    for idle in report.get("idle") or []:
        if idle["keys_est"]:
            out.line(
                Text(
                    f"  idle over {duration(idle['over_s'])}: {idle['keys_est']:,} keys, "
                    f"{size(idle['bytes_est'])} ({_pm(idle['bytes_est'], idle.get('bytes_ci95'))})",
                    style="dim",
                )
            )
    big = report.get("big_keys") or []
    if big:
        out.line(
            Text("  biggest: " + ", ".join(f"{b['key']} {size(b['bytes'])} {b['type']}" for b in big[:5]))
        )
    for c_prefix in prefixes:
        c = c_prefix.get("compress")
        if c and c.get("recommend"):
            out.line(
                Text(
                    f"  compress {c_prefix['prefix']}: {c.get('reason', '')}; saves about "
                    f"{size(c.get('saved_bytes_est'))}",
                    style="green",
                )
            )
    values = report.get("values") or {}
    skipped = values.get("skipped_types") or {}
    if skipped:
        kinds = ", ".join(f"{n:,} {t}" for t, n in skipped.items())
        out.line(Text(f"  compression: strings only; skipped {kinds} sampled keys", style="dim"))
    for note in report.get("notes") or []:
        out.line(Text(f"  note: {display_key(note, 400)}", style="dim"))

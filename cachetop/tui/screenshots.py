"""`python -m cachetop.tui.screenshots OUTDIR`: SVGs of the overview, the detail view and help,
from the real app fed fixed data (cachetop/tui/sample_data.py), so they are the same every run."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from cachetop.tui.app import CachetopApp
from cachetop.tui.sample_data import sample_config, sample_snapshots

SIZE = (110, 30)
DETAIL_OF = "api-cache"


async def take(outdir: Path, size: tuple[int, int] = SIZE) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    app = CachetopApp(sample_config(), snapshots=sample_snapshots())
    written = []
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        written.append(Path(app.save_screenshot("overview.svg", str(outdir))))
        overview = app.screen
        overview._select(DETAIL_OF)  # type: ignore[attr-defined]
        overview.action_open()  # type: ignore[attr-defined]
        await pilot.pause()
        written.append(Path(app.save_screenshot("detail.svg", str(outdir))))
        await pilot.press("escape")
        app.action_help()
        await pilot.pause()
        written.append(Path(app.save_screenshot("help.svg", str(outdir))))
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m cachetop.tui.screenshots OUTDIR", file=sys.stderr)
        return 2
    for path in asyncio.run(take(Path(argv[0]))):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

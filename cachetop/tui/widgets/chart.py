"""A small text chart: the first series as bars, the others as markers over them.

Series are downsampled to the widget's width at render time, so a 10-minute history fits any
terminal. Rendering is plain rich Text: cheap, deterministic, and fine over SSH.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from cachetop.tui.history import downsample

EIGHTHS = " ▁▂▃▄▅▆▇█"
MARKERS = "•◆▲■"
GUTTER = 8


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: Sequence[float | None]
    colour: str  # a CSS variable name of the theme: primary, success, warning, error, accent...


class Chart(Widget):
    DEFAULT_CSS = """
    Chart { height: 8; width: 1fr; padding: 0 1; }
    """

    def __init__(
        self,
        title: str,
        formatter: Callable[[float | None], str],
        *,
        fixed_max: float | None = None,
        zoom: bool = False,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.title = title
        self.formatter = formatter
        self.fixed_max = fixed_max
        # zoom: the axis starts near the lowest value (a hit ratio moving between 85 and 95%
        # would otherwise be a wall of full bars).
        self.zoom = zoom
        self.series: list[Series] = []

    def set_series(self, series: list[Series]) -> None:
        self.series = series
        self.refresh()

    def _colour(self, name: str) -> str:
        return self.app.get_css_variables().get(name, "") if self.is_mounted else ""

    def _axis(self, value: float) -> str:
        return "0" if value == 0 else self.formatter(value)

    def render(self) -> Text:
        width = max(10, self.content_size.width)
        height = max(3, self.content_size.height)
        plot_w = width - GUTTER
        plot_h = height - 1  # the first line is the title and legend
        out = Text(no_wrap=True, overflow="crop")
        out.append(self.title, style="bold")
        for i, s in enumerate(self.series):
            latest = next((v for v in reversed(s.values) if v is not None), None)
            mark = "█" if i == 0 else MARKERS[(i - 1) % len(MARKERS)]
            out.append(f"  {mark} ", style=self._colour(s.colour))
            out.append(f"{s.label} {self.formatter(latest)}")
        out.append("\n")
        columns = [
            downsample(s.values, plot_w, "max" if i == 0 else "mean") for i, s in enumerate(self.series)
        ]
        known = [v for col in columns for v in col if v is not None]
        top = self.fixed_max if self.fixed_max is not None else (max(known) if known else 0.0)
        top = top if top > 0 else 1.0
        bottom = 0.0
        if self.zoom and known:
            bottom = max(0.0, (min(known) // 10) * 10 - 10)
            bottom = min(bottom, top - 1.0)
        grid = [[(" ", "")] * plot_w for _ in range(plot_h)]
        for i, values in enumerate(columns):
            offset = plot_w - len(values)  # newest at the right edge
            colour = self._colour(self.series[i].colour)
            for x, v in enumerate(values):
                if v is None:
                    continue
                level = max(0.0, min((v - bottom) / (top - bottom), 1.0)) * plot_h
                if i == 0:
                    full, part = int(level), round((level - int(level)) * 8)
                    for y in range(plot_h):
                        depth = plot_h - 1 - y  # rows from the bottom
                        if depth < full:
                            grid[y][offset + x] = ("█", colour)
                        elif depth == full and part:
                            grid[y][offset + x] = (EIGHTHS[part], colour)
                else:
                    y = plot_h - 1 - min(plot_h - 1, int(level))
                    grid[y][offset + x] = (MARKERS[(i - 1) % len(MARKERS)], colour)
        for y, row in enumerate(grid):
            label = self.formatter(top) if y == 0 else (self._axis(bottom) if y == plot_h - 1 else "")
            out.append(f"{label:>{GUTTER - 1}}│", style="dim")
            # One span per run of the same colour keeps the render (and SVG exports) small.
            run, run_colour = [], ""
            for char, colour in row:
                if colour != run_colour and run:
                    out.append("".join(run), style=run_colour)
                    run = []
                run.append(char)
                run_colour = colour
            if run:
                out.append("".join(run), style=run_colour)
            if y < plot_h - 1:
                out.append("\n")
        return out

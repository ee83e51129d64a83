"""Bar charts drawn as SVG on the server: no script, readable without colour, printable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ROW_HEIGHT = 24
LABEL_WIDTH = 220
BAR_AREA = 360


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    shown: str
    y: int
    width: int


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    height: int
    label_width: int = LABEL_WIDTH
    bar_area: int = BAR_AREA


def bar_chart(items: Sequence[tuple[str, float]], *, percent: bool = False) -> Chart:
    """Horizontal bars scaled to the largest value (or to 100 % for shares); negative values draw nothing."""
    top = 1.0 if percent else max((value for _, value in items), default=0.0)
    bars = []
    for i, (label, value) in enumerate(items):
        width = round(BAR_AREA * max(value, 0.0) / top) if top > 0 else 0
        shown = f"{value * 100:.1f}%" if percent else f"{value:,.0f}"
        bars.append(Bar(label, value, shown, i * ROW_HEIGHT, min(width, BAR_AREA)))
    return Chart(bars, max(len(bars), 1) * ROW_HEIGHT)

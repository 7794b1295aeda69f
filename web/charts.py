"""Charts as SVG rendered on the server: a daily trend line, a horizontal bar chart and a
weekday × hour heat map.

Why server-side SVG and not a chart library in the browser (docs/figures.md): no script to
vendor, pin or load (the strict CSP stays as it is and teller pages stay as light as they
are), the chart is in the HTML the server sends (it prints, it works without JavaScript and
it is testable with an HTML parser), and three chart kinds do not need a library.

Colours and fonts come from CSS classes (``web/static/css/figures.css``); the SVG carries
only geometry as presentation attributes, which the CSP does not govern (no ``style``
attribute anywhere). Every chart has a ``<title>`` and the page shows the same numbers in a
table under it (the chart's accessible twin). Values are plain numbers; ``None`` is "no
data" (a gap in the line, an empty bar).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date

from markupsafe import Markup, escape

WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
HEAT_LEVELS = 6  # classes heat-0 (none) … heat-5 (the busiest hour)

Number = int | float


def nice_max(value: float) -> float:
    """The smallest 1/2/2.5/5 × 10^n that is ≥ ``value`` (axis top); 1 for 0 or less."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10**exp
        if top >= value - 1e-12:
            return float(top)
    return float(10 ** (exp + 1))  # pragma: no cover - the loop always returns


def _num(value: float) -> str:
    """A coordinate with at most one decimal (short SVG, stable in tests)."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(width: int, height: int, title: str, body: list[str], css: str) -> Markup:
    label = escape(title)
    return Markup(
        f'<svg class="chart {css}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{label}</title>{''.join(body)}</svg>"
    )


def line_chart(
    points: Sequence[tuple[date, Number | None]],
    *,
    title: str,
    fmt: Callable[[Number], str] = str,
    ratio: bool = False,
    integer: bool = False,
    width: int = 720,
    height: int = 220,
) -> Markup:
    """A daily trend line. ``points`` in date order; ``None`` leaves a gap. ``ratio``: the
    axis runs 0–100 % (values 0..1); ``integer``: the axis steps are whole numbers (counts).
    ``fmt`` formats a value for tooltips and the axis."""
    left, right, top, bottom = 56, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _d, v in points if v is not None]
    y_max = 1.0 if ratio else nice_max(max(values, default=0))
    if integer:  # counts: four grid steps of whole numbers
        y_max = 4.0 * math.ceil(y_max / 4)
    n = max(len(points) - 1, 1)

    def x(i: int) -> float:
        return left + plot_w * i / n

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    body = []
    for k in range(5):  # grid lines and axis labels at 0, ¼ … top
        tick = y_max * k / 4
        body.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_num(y(tick))}" y2="{_num(y(tick))}"/>')
        body.append(f'<text class="axis" x="{left - 6}" y="{_num(y(tick) + 4)}" text-anchor="end">{escape(fmt(tick))}</text>')
    step = max(1, math.ceil(len(points) / 8))
    for i, (day, _v) in enumerate(points):
        last = i == len(points) - 1 and (i % step) * 2 >= step  # not on top of the one before
        if i % step == 0 or last:
            body.append(f'<text class="axis" x="{_num(x(i))}" y="{height - 8}" text-anchor="middle">{day:%m-%d}</text>')
    segment: list[str] = []
    segments: list[list[str]] = []
    for i, (_day, v) in enumerate(points):
        if v is None:
            if segment:
                segments.append(segment)
            segment = []
        else:
            segment.append(f"{_num(x(i))},{_num(y(v))}")
    if segment:
        segments.append(segment)
    for seg in segments:
        body.append(f'<polyline class="line" fill="none" points="{" ".join(seg)}"/>')
    for i, (day, v) in enumerate(points):
        if v is not None:
            body.append(
                f'<circle class="dot" cx="{_num(x(i))}" cy="{_num(y(v))}" r="3">'
                f"<title>{day:%Y-%m-%d}：{escape(fmt(v))}</title></circle>"
            )
    if not values:
        body.append(f'<text class="empty" x="{width // 2}" y="{height // 2}" text-anchor="middle">本期无数据</text>')
    return _svg(width, height, title, body, "chart-line")


def bar_chart(
    rows: Sequence[tuple[str, Number | None, str | None]],
    *,
    title: str,
    fmt: Callable[[Number], str] = str,
    ratio: bool = False,
    width: int = 720,
    row_height: int = 26,
) -> Markup:
    """Horizontal bars, one per ``(label, value, href)`` row in the given order; a bar with
    ``href`` links to the rows behind it. ``ratio``: the scale runs 0–100 %."""
    label_w, value_w, pad = 220, 90, 6
    plot_w = width - label_w - value_w
    height = max(1, len(rows)) * row_height + 2 * pad
    values = [v for _l, v, _h in rows if v is not None]
    top = 1.0 if ratio else nice_max(max(values, default=0))
    body = []
    for i, (label, value, href) in enumerate(rows):
        y = pad + i * row_height
        short = label if len(label) <= 14 else label[:13] + "…"
        bar_w = 0.0 if value is None else plot_w * max(0.0, float(value)) / top
        text = "—" if value is None else fmt(value)
        parts = [
            f'<text class="label" x="{label_w - 8}" y="{y + row_height * 0.65:.1f}" text-anchor="end">'
            f"<title>{escape(label)}</title>{escape(short)}</text>",
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{_num(bar_w)}" height="{row_height - 8}"/>',
            f'<text class="value" x="{_num(label_w + bar_w + 6)}" y="{y + row_height * 0.65:.1f}">{escape(text)}</text>',
        ]
        if href:
            body.append(f'<a href="{escape(href)}">{"".join(parts)}</a>')
        else:
            body.extend(parts)
    if not rows:
        body.append(f'<text class="empty" x="{width // 2}" y="{height // 2 + 4}" text-anchor="middle">本期无数据</text>')
    return _svg(width, height, title, body, "chart-bar")


def heat_level(count: int, busiest: int) -> int:
    """Class index 0…5 of a cell: 0 for no tickets, else 1…5 by share of the busiest hour."""
    if count <= 0 or busiest <= 0:
        return 0
    return min(HEAT_LEVELS - 1, 1 + int((HEAT_LEVELS - 1) * (count - 1) / busiest))


def heat_map(grid: Sequence[Sequence[int]], *, title: str, hours: range = range(24), width: int = 720) -> Markup:
    """Tickets by weekday (rows, Monday first) × hour of day (columns, local time).
    ``grid[weekday][hour]`` is a count; ``hours`` limits the columns shown."""
    left, top = 40, 18
    cols = list(hours)
    cell = (width - left - 4) / max(1, len(cols))
    height = top + 7 * 22 + 4
    busiest = max((max(row) for row in grid), default=0) if grid else 0
    body = []
    for j, hour in enumerate(cols):
        if hour % 2 == 0:
            body.append(f'<text class="axis" x="{_num(left + j * cell + cell / 2)}" y="12" text-anchor="middle">{hour}</text>')
    for wd in range(7):
        y = top + wd * 22
        body.append(f'<text class="axis" x="{left - 6}" y="{y + 15}" text-anchor="end">{WEEKDAYS[wd]}</text>')
        for j, hour in enumerate(cols):
            count = grid[wd][hour] if wd < len(grid) and hour < len(grid[wd]) else 0
            body.append(
                f'<rect class="heat-{heat_level(count, busiest)}" x="{_num(left + j * cell + 1)}" y="{y + 1}" '
                f'width="{_num(cell - 2)}" height="20"><title>{WEEKDAYS[wd]} {hour}:00–{hour + 1}:00：{count} 张</title></rect>'
            )
    return _svg(width, height, title, body, "chart-heat")

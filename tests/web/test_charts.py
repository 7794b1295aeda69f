"""Server-side SVG charts: geometry as attributes, colours as classes, no style attribute."""

from __future__ import annotations

from datetime import date, timedelta

from bs4 import BeautifulSoup

from web.charts import bar_chart, heat_level, heat_map, line_chart, nice_max


def _svg(markup: str) -> BeautifulSoup:
    soup = BeautifulSoup(str(markup), "html.parser")
    assert soup.find(attrs={"style": True}) is None, "a style attribute breaks the strict CSP"
    assert soup.find("script") is None
    return soup


def test_nice_max_rounds_up_to_a_readable_axis_top() -> None:
    assert [nice_max(v) for v in (0, 0.3, 1, 7, 11, 23, 99, 101, 2400)] == [1, 0.5, 1, 10, 20, 25, 100, 200, 2500]


def test_line_chart_draws_one_dot_per_value_and_breaks_at_gaps() -> None:
    start = date(2026, 11, 1)
    points = [(start + timedelta(days=i), v) for i, v in enumerate([3, 5, None, 4, 8])]
    soup = _svg(line_chart(points, title="每日受理量"))
    assert soup.svg["role"] == "img" and soup.svg.title.string == "每日受理量"
    assert len(soup.find_all("circle")) == 4
    assert len(soup.find_all("polyline")) == 2  # the gap splits the line
    assert "2026-11-05：8" in [c.title.string for c in soup.find_all("circle")]
    ys = {c.title.string: float(c["cy"]) for c in soup.find_all("circle")}
    assert ys["2026-11-05：8"] < ys["2026-11-01：3"]  # higher value, higher on screen


def test_line_chart_of_ratios_runs_to_100_percent_and_says_when_empty() -> None:
    soup = _svg(line_chart([(date(2026, 11, 1), 0.5)], title="按期办结率", ratio=True,
                           fmt=lambda v: f"{v * 100:.0f}%"))
    assert "100%" in [t.string for t in soup.find_all("text")]
    empty = _svg(line_chart([(date(2026, 11, 1), None)], title="x"))
    assert empty.find("text", class_="empty").string == "本期无数据"


def test_bar_chart_links_each_bar_and_scales_to_the_largest() -> None:
    soup = _svg(bar_chart([("工商银行海川长江中路支行", 40, "/figures/rows?x=1"), ("农商银行", 10, None),
                           ("邮政", None, None)], title="按网点"))
    bars = soup.find_all("rect", class_="bar")
    assert [float(b["width"]) for b in bars][:2] == [328.0, 82.0]  # axis top 50 = 410 px
    assert float(bars[2]["width"]) == 0
    assert soup.find("a")["href"] == "/figures/rows?x=1"
    assert [t.string for t in soup.find_all("text", class_="value")] == ["40", "10", "—"]


def test_heat_map_has_168_cells_graded_by_the_busiest_hour() -> None:
    grid = [[0] * 24 for _ in range(7)]
    grid[0][9] = 10  # Monday 9:00
    grid[4][15] = 1
    soup = _svg(heat_map(grid, title="号票时段分布"))
    cells = soup.find_all("rect")
    assert len(cells) == 7 * 24
    by_title = {c.title.string: c["class"][0] for c in cells}
    assert by_title["周一 9:00–10:00：10 张"] == "heat-5"
    assert by_title["周五 15:00–16:00：1 张"] == "heat-1"
    assert by_title["周日 3:00–4:00：0 张"] == "heat-0"
    assert [heat_level(c, 10) for c in (0, 1, 3, 5, 10)] == [0, 1, 2, 3, 5]

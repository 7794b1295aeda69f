"""CSV (UTF-8 with BOM) and xlsx writers: Chinese headers, the dashboard's own formatting,
formula-looking text neutralised; the xlsx is read back with openpyxl."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from web.figure_exports import Column, Sheet, csv_bytes, display, header, xlsx_bytes

SHEET = Sheet(
    "按网点",
    [Column("网点"), Column("办结数", "count"), Column(header("按期办结率", "ratio"), "ratio"),
     Column(header("平均办理时长", "days"), "days")],
    [["工商银行海川长江中路支行", 12, 0.9166666, 2.25], ["=HYPERLINK(\"x\")", 0, None, None]],
)


def test_display_formats_each_unit_as_the_dashboard_does() -> None:
    assert [display("count", 3), display("ratio", 0.9166666), display("days", 2.25),
            display("seconds", 61), display("ratio", None)] == ["3", "91.7%", "2.2", "61.0", "—"]
    assert header("平均等待时长", "seconds") == "平均等待时长（秒）"


def test_csv_has_a_bom_chinese_headers_and_the_displayed_values() -> None:
    data = csv_bytes(SHEET)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["网点", "办结数", "按期办结率", "平均办理时长（工作日）"]
    assert rows[1] == ["工商银行海川长江中路支行", "12", "91.7%", "2.2"]
    assert rows[2] == ["'=HYPERLINK(\"x\")", "0", "", ""]  # never a formula; None is empty
    assert b"\r\n" in data


def test_xlsx_reads_back_with_headers_numbers_and_percent_format() -> None:
    book = load_workbook(io.BytesIO(xlsx_bytes([SHEET, Sheet("汇总", [Column("指标")], [["受理量"]])])))
    assert book.sheetnames == ["按网点", "汇总"]
    ws = book["按网点"]
    assert [c.value for c in ws[1]] == ["网点", "办结数", "按期办结率", "平均办理时长（工作日）"]
    assert [c.value for c in ws[2]] == ["工商银行海川长江中路支行", 12, 0.9166666, 2.25]
    assert ws["C2"].number_format == "0.0%"
    assert ws["A3"].value == "=HYPERLINK(\"x\")" and ws["A3"].data_type == "s"  # text, not a formula
    assert ws["C3"].value is None
    assert ws.freeze_panes == "A2"

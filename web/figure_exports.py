"""Figures as files: CSV in UTF-8 with a BOM (Excel opens it without garbling Chinese) and
.xlsx written by XlsxWriter (Chinese headers, ratios as real percentages, frozen header row).

One formatter, :func:`display`, turns a figure value into the text the dashboard shows; the
CSV writes exactly that text, so the page and the CSV never disagree. The xlsx keeps numbers
as numbers (a ratio 0.935 with the format ``0.0%``) so Excel can compute with them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import xlsxwriter

UNIT_SUFFIX = {"count": "", "ratio": "", "days": "（工作日）", "seconds": "（秒）", "minutes": "（分钟）", "per_case": "（次/件）"}
# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def display(unit: str, value: Any) -> str:
    """The text of a figure value: "—" for None (nothing to divide by), counts as integers,
    ratios (0..1) as percentages with one decimal, times with one decimal."""
    if value is None:
        return "—"
    if unit == "count":
        return str(int(value))
    if unit == "ratio":
        return f"{float(value) * 100:.1f}%"
    return f"{float(value):.1f}"


def header(label: str, unit: str) -> str:
    """A column header: the Chinese label with its unit, e.g. ``平均等待时长（秒）`` (a label
    that already names its unit in brackets is kept as it is)."""
    return label if "（" in label else label + UNIT_SUFFIX.get(unit, "")


@dataclass(frozen=True)
class Column:
    """One column of a table: Chinese header and the unit of its values ("text" for labels)."""

    title: str
    unit: str = "text"


@dataclass(frozen=True)
class Sheet:
    """A table: a sheet of the workbook, or the whole of a CSV file."""

    name: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]


def _safe_text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def csv_bytes(sheet: Sheet) -> bytes:
    """The table as CSV, UTF-8 with BOM, CRLF line ends; values as :func:`display` shows
    them (None as an empty cell); text that a spreadsheet would run as a formula is
    prefixed with ``'``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.title for c in sheet.columns])
    for row in sheet.rows:
        cells = []
        for col, value in zip(sheet.columns, row, strict=True):
            if col.unit == "text":
                cells.append(_safe_text(str(value if value is not None else "")))
            else:
                cells.append("" if value is None else display(col.unit, value))
        writer.writerow(cells)
    return out.getvalue().encode("utf-8-sig")


def xlsx_bytes(sheets: Sequence[Sheet], *, title: str = "服务统计") -> bytes:
    """A workbook with one sheet per table: bold Chinese header row (frozen), counts as
    integers, ratios as numbers formatted ``0.0%``, times with one decimal, None as an empty
    cell. Text is written as text (never as a formula)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False})
    book.set_properties({"title": title, "author": "政银+ 便民服务点"})
    bold = book.add_format({"bold": True, "bg_color": "#E8EEF6", "border": 1, "text_wrap": True})
    formats = {
        "count": book.add_format({"num_format": "0"}),
        "ratio": book.add_format({"num_format": "0.0%"}),
        "days": book.add_format({"num_format": "0.0"}),
        "seconds": book.add_format({"num_format": "0.0"}),
        "minutes": book.add_format({"num_format": "0.0"}),
    }
    for sheet in sheets:
        ws = book.add_worksheet(sheet.name[:31])
        for j, col in enumerate(sheet.columns):
            ws.write_string(0, j, col.title, bold)
            ws.set_column(j, j, 28 if col.unit == "text" else max(10, min(24, len(col.title) * 2)))
        ws.freeze_panes(1, 0)
        for i, row in enumerate(sheet.rows, start=1):
            for j, (col, value) in enumerate(zip(sheet.columns, row, strict=True)):
                if value is None:
                    ws.write_blank(i, j, None)
                elif col.unit == "text":
                    ws.write_string(i, j, str(value))
                else:
                    ws.write_number(i, j, float(value), formats.get(col.unit))
    book.close()
    return buffer.getvalue()

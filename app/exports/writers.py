"""CSV, XLSX and PDF writers for any ``Table`` (a list screen's rows or a registered report).

Each writer consumes the rows as they come (an iterator that loads its records batch by batch),
so a 50,000-row export never holds 50,000 records; it writes plain values:

* numbers stay numbers: ``Decimal`` money is written exactly in a CSV (``1234.50``, never a
  float's ``1234.4999``) and as a number cell in a workbook;
* dates and times are UTC (a workbook cannot hold a time zone);
* text that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a
  tab or a carriage return) is neutralised: prefixed with ``'`` in a CSV, and stored as a plain
  string cell (never a formula) in a workbook.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, BinaryIO

from markupsafe import Markup

from app.reports.registry import Table

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Format:
    name: str
    label: str
    extension: str
    content_type: str


FORMATS: dict[str, Format] = {
    "csv": Format("csv", "CSV", "csv", "text/csv; charset=utf-8"),
    "xlsx": Format(
        "xlsx",
        "XLSX",
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "pdf": Format("pdf", "PDF", "pdf", "application/pdf"),
}


def neutralise(text: str) -> str:
    """Text a spreadsheet opening a CSV will show, never run: ``=SUM(A1)`` -> ``'=SUM(A1)``."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def filters_in_words(filters: Mapping[str, str]) -> str:
    """``{"Status": "equal to new"}`` -> ``Status: equal to new``; ``none`` without filters."""
    return "; ".join(f"{name}: {value}" for name, value in filters.items()) or "none"


def _plain(value: Any) -> Any:
    """A cell's value as plain data: numbers, dates and text; anything else as its text."""
    if value is None or isinstance(value, (str, int, Decimal, float, date)):
        if isinstance(value, Markup):
            return value.striptags()
        return value
    return str(value)


def _utc_naive(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


# ---- CSV ----------------------------------------------------------------------------------


def _csv_cell(value: Any) -> Any:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, Decimal, float)):
        return str(value)
    if isinstance(value, datetime):
        return _utc_naive(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return neutralise(value)


def write_csv(table: Table, out: BinaryIO, **_: Any) -> int:
    """UTF-8 with a byte order mark (so Excel reads the accents right). A table in parts is
    written part by part, each under a line with its title, with a blank line between parts."""
    import csv

    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    parts = table.parts()
    written = 0
    for index, part in enumerate(parts):
        if len(parts) > 1:
            if index:
                writer.writerow([])
            writer.writerow([neutralise(part.title)])
        writer.writerow([neutralise(str(column)) for column in part.columns])
        for row in part.rows:
            writer.writerow([_csv_cell(value) for value in row])
            written += 1
    text.flush()
    text.detach()
    return written


# ---- XLSX ---------------------------------------------------------------------------------

_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_XLSX_MAX_TEXT = 32_767


def _sheet_name(title: str, taken: set[str]) -> str:
    base = _SHEET_NAME_FORBIDDEN.sub(" ", title).strip()[:31] or "Sheet"
    name, n = base, 2
    while name.lower() in taken:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(name.lower())
    return name


def write_xlsx(table: Table, out: BinaryIO, generated_at: datetime | None = None, **_: Any) -> int:
    """One sheet per part (column headings in the first row, frozen), then an "About" sheet
    with the title, the filters and when the file was made. openpyxl's write-only mode keeps
    a constant amount of memory whatever the number of rows."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    taken: set[str] = set()
    bold = Font(bold=True)
    written = 0

    def text_cell(sheet, text: str, font: Font | None = None) -> WriteOnlyCell:
        cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", text)[:_XLSX_MAX_TEXT])
        cell.data_type = "s"  # a plain string, also when it starts with "=" (never a formula)
        if font is not None:
            cell.font = font
        return cell

    def value_cell(sheet, value: Any) -> Any:
        value = _plain(value)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return text_cell(sheet, value)
        if isinstance(value, Decimal):
            cell = WriteOnlyCell(sheet, value=value)
            exponent = value.as_tuple().exponent
            if isinstance(exponent, int) and exponent < 0:
                cell.number_format = "#,##0." + "0" * -exponent
            return cell
        if isinstance(value, datetime):
            cell = WriteOnlyCell(sheet, value=_utc_naive(value))
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
            return cell
        if isinstance(value, date):
            cell = WriteOnlyCell(sheet, value=value)
            cell.number_format = "yyyy-mm-dd"
            return cell
        return value

    for part in table.parts():
        sheet = workbook.create_sheet(_sheet_name(part.title, taken))
        sheet.freeze_panes = "A2"
        for index, column in enumerate(part.columns, start=1):
            from openpyxl.utils import get_column_letter

            sheet.column_dimensions[get_column_letter(index)].width = max(
                10, min(40, len(str(column)) + 4)
            )
        sheet.append([text_cell(sheet, str(column), bold) for column in part.columns])
        for row in part.rows:
            sheet.append([value_cell(sheet, value) for value in row])
            written += 1
    about = workbook.create_sheet(_sheet_name("About", taken))
    about.column_dimensions["A"].width = 14
    about.column_dimensions["B"].width = 80
    for label, text in (
        ("Report", table.title),
        ("Filters", filters_in_words(table.filters)),
        ("Generated", _generated(generated_at)),
        ("Rows", str(written)),
    ):
        about.append([text_cell(about, label, bold), text_cell(about, text)])
    workbook.save(out)
    return written


# ---- PDF ----------------------------------------------------------------------------------

PDF_CHUNK_ROWS = 500
"""Rows per reportlab table: one huge table takes minutes to split into pages (50,000 rows:
about 160 s), tables of 500 rows a few seconds in all."""


def _generated(generated_at: datetime | None) -> str:
    moment = generated_at or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pdf_cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, Decimal):
        return format(value, ",f")
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, datetime):
        return _utc_naive(value).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _wrap(text: str, fits: int) -> str:
    """A long cell broken into lines of at most ``fits`` characters (at spaces where it can,
    inside a word where it must). A table cell of plain lines costs a fraction of a wrapped
    paragraph to lay out: measuring a paragraph's words dominated the time of a large PDF."""
    return "\n".join(
        textwrap.wrap(text, width=fits, break_on_hyphens=False, drop_whitespace=True) or [""]
    )


def _numbered_canvas():
    from reportlab.pdfgen.canvas import Canvas

    class NumberedCanvas(Canvas):
        """Holds each page until the end, then stamps "Page N of M" on every one."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:  # noqa: N802 (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                width, _ = self._pagesize
                self.setFont("Helvetica", 8)
                self.drawRightString(width - 28, 18, f"Page {self._pageNumber} of {total}")
                super().showPage()
            super().save()

    return NumberedCanvas


def write_pdf(
    table: Table,
    out: BinaryIO,
    generated_at: datetime | None = None,
    generated_by: str | None = None,
    **_: Any,
) -> int:
    """The title, the filters in words and the time it was made, then each part's table with
    its column headings repeated at the top of every page, and "Page N of M" at the foot."""
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

    parts = table.parts()
    widest = max((len(part.columns) for part in parts), default=1)
    pagesize = landscape(A4) if widest > 5 else A4
    margin = 12 * mm
    usable = pagesize[0] - 2 * margin
    styles = getSampleStyleSheet()
    cell_style = styles["BodyText"].clone("cell", fontSize=7, leading=8.5)
    head_style = cell_style.clone("head", fontName="Helvetica-Bold", textColor=colors.white)
    generated = _generated(generated_at) + (f" by {generated_by}" if generated_by else "")
    story: list[Any] = [
        Paragraph(escape(table.title), styles["Title"]),
        Paragraph(f"<b>Filters:</b> {escape(filters_in_words(table.filters))}", styles["Normal"]),
        Paragraph(f"<b>Generated:</b> {escape(generated)}", styles["Normal"]),
        Spacer(1, 4 * mm),
    ]
    style = TableStyle(
        [
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#2c3e50")),
            ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
            ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
            ("FONTSIZE", (0, 0), (-1, -1), 7),
            ("LEADING", (0, 0), (-1, -1), 8.5),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f4f6f7")]),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ]
    )
    written = 0
    for part in parts:
        if len(parts) > 1:
            story.append(Paragraph(escape(part.title), styles["Heading3"]))
        columns = [str(c) for c in part.columns] or [""]
        width = usable / len(columns)
        fits = max(8, int(width / (7 * 0.5)))  # characters of 7 pt Helvetica in a column
        header = [Paragraph(escape(c), head_style) for c in columns]

        def cell(text: str, fits: int = fits) -> str:
            return _wrap(text, fits) if len(text) > fits or "\n" in text else text

        chunk: list[list[Any]] = []
        emitted = False
        for row in part.rows:
            chunk.append([cell(_pdf_cell(value)) for value in row])
            written += 1
            if len(chunk) == PDF_CHUNK_ROWS:
                story.append(_pdf_table(LongTable, header, chunk, width, style))
                chunk, emitted = [], True
        if chunk or not emitted:
            story.append(_pdf_table(LongTable, header, chunk, width, style))
        if not chunk and not emitted:
            story.append(Paragraph("No rows.", styles["Italic"]))
        story.append(Spacer(1, 4 * mm))
    document = SimpleDocTemplate(
        out,
        pagesize=pagesize,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
        title=table.title,
    )
    document.build(story, canvasmaker=_numbered_canvas())
    return written


def _pdf_table(table_class, header, rows, width, style):
    result = table_class([header, *rows], colWidths=[width] * len(header), repeatRows=1)
    result.setStyle(style)
    return result


# ---- one entry point ----------------------------------------------------------------------

WRITERS: dict[str, Callable[..., int]] = {"csv": write_csv, "xlsx": write_xlsx, "pdf": write_pdf}


def write_table(
    fmt: str,
    table: Table,
    out: BinaryIO,
    generated_at: datetime | None = None,
    generated_by: str | None = None,
) -> int:
    """Write ``table`` in ``fmt`` (csv, xlsx or pdf) to ``out``; returns the rows written."""
    return WRITERS[fmt](table, out, generated_at=generated_at, generated_by=generated_by)

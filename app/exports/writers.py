"""CSV, XLSX and PDF writers for any ``Table`` (a list screen's rows or a registered report).

Each writer consumes the rows as they come (an iterator that loads its records batch by batch),
so a 50,000-row export never holds 50,000 records; it writes plain values:

* numbers stay numbers: ``Decimal`` money is written exactly in a CSV (``1234.50``, never a
  float's ``1234.4999``) and as a number cell in a workbook;
* times are UTC in a CSV and a workbook (a workbook cannot hold a time zone; a list's time
  columns say "(UTC)" in their headings), and in the reader's zone with its abbreviation in a
  PDF (``06 Dec 2026 19:35 AEDT``; headings drop a "(UTC)" note);
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
from zoneinfo import ZoneInfo

from markupsafe import Markup

from app.core.localtime import format_local, zone_free_label
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

PDF_FONT = "Helvetica"
PDF_HEAD_FONT = "Helvetica-Bold"
PDF_FONT_SIZE = 7
PDF_LEADING = 8.5
PDF_PAD_X = 6  # left and right padding of a cell
PDF_PAD_Y = 1.5  # top and bottom padding of a cell
PDF_HEAD_BACKGROUND = "#2c3e50"
PDF_STRIPE = "#f4f6f7"  # every other row of a page, from its second row
PDF_GRID_WIDTH = 0.25


def _generated(generated_at: datetime | None, zone: ZoneInfo | None = None) -> str:
    moment = generated_at or datetime.now(UTC)
    if zone is not None:
        return format_local(moment, zone)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pdf_cell(value: Any, zone: ZoneInfo | None = None) -> str:
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
        if zone is not None:
            return format_local(value, zone)
        return _utc_naive(value).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _wrap(text: str, fits: int) -> list[str]:
    """A long cell broken into lines of at most ``fits`` characters (at spaces where it can,
    inside a word where it must)."""
    return textwrap.wrap(text, width=fits, break_on_hyphens=False, drop_whitespace=True) or [""]


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


class _PdfRows:
    """One part's rows, laid out once: the text of each cell (a string, or a list of lines
    when it is wrapped), the height of each row and the running total of the heights, so that
    finding where a page ends is a binary search rather than a measure of every row again.

    A row taller than a whole page (a very long note) is continued on the next page: it is cut
    into pieces of as many lines as a page holds."""

    def __init__(
        self, columns: list[str], usable: float, page_room: float, zone: ZoneInfo | None = None
    ) -> None:
        from xml.sax.saxutils import escape

        from reportlab.lib.styles import getSampleStyleSheet
        from reportlab.platypus import Paragraph

        self.zone = zone
        if zone is not None:  # every time carries its zone's abbreviation
            columns = [str(zone_free_label(column)) for column in columns]
        self.width = usable
        self.column_width = usable / len(columns)
        self.fits = max(8, int(self.column_width / (PDF_FONT_SIZE * 0.5)))
        style = getSampleStyleSheet()["BodyText"].clone(
            "head",
            fontName=PDF_HEAD_FONT,
            fontSize=PDF_FONT_SIZE,
            leading=PDF_LEADING,
            textColor="#ffffff",
        )
        inner = self.column_width - 2 * PDF_PAD_X
        # Each heading as a paragraph broken into lines once; plain lines are then drawn on
        # every page like the cells, a heading with mixed fonts by the paragraph itself.
        self.header: list[tuple[Any, float, list[str] | None]] = []
        tallest = 0.0
        for column in columns:
            paragraph = Paragraph(escape(column), style)
            _, height = paragraph.wrap(inner, 10_000)
            laid_out = paragraph.blPara
            lines = [" ".join(words) for _, words in laid_out.lines] if laid_out.kind == 0 else None
            self.header.append((paragraph, height, lines))
            tallest = max(tallest, height)
        self.header_height = tallest + 2 * PDF_PAD_Y
        # Lines of one row that a page holds under the headings (a point to spare for rounding).
        room = page_room - self.header_height - 2 * PDF_PAD_Y - 1
        self.max_lines = max(1, int(room / PDF_LEADING))
        self.cells: list[list[str | list[str]]] = []
        self.tops: list[float] = [0.0]  # tops[i]: the height of the rows before row i
        self.count = 0

    def add(self, row: Any) -> None:
        fits = self.fits
        cells: list[str | list[str]] = []
        lines = 1
        zone = self.zone
        for value in row:
            text = _pdf_cell(value, zone)
            if len(text) > fits or "\n" in text:
                wrapped = _wrap(text, fits)
                lines = max(lines, len(wrapped))
                cells.append(wrapped)
            else:
                cells.append(text)
        self.count += 1
        if lines > self.max_lines:
            self._add_in_pieces(cells, lines)
            return
        self.cells.append(cells)
        self.tops.append(self.tops[-1] + lines * PDF_LEADING + 2 * PDF_PAD_Y)

    def _add_in_pieces(self, cells: list[str | list[str]], lines: int) -> None:
        step = self.max_lines
        for first in range(0, lines, step):
            piece: list[str | list[str]] = []
            for cell in cells:
                if isinstance(cell, list):
                    piece.append(cell[first : first + step])
                else:
                    piece.append(cell if first == 0 else "")
            height = min(step, lines - first) * PDF_LEADING + 2 * PDF_PAD_Y
            self.cells.append(piece)
            self.tops.append(self.tops[-1] + height)


def _pdf_rows_flowable():
    from bisect import bisect_right

    from reportlab.lib import colors
    from reportlab.platypus import Flowable

    head_background = colors.HexColor(PDF_HEAD_BACKGROUND)
    stripe = colors.HexColor(PDF_STRIPE)

    class PdfRowsTable(Flowable):
        """Rows ``start`` to ``stop`` of a part under its column headings: a grid with the
        headings on a dark band and every other row shaded, drawn straight on the page."""

        def __init__(self, rows: _PdfRows, start: int, stop: int) -> None:
            super().__init__()
            self.rows, self.start, self.stop = rows, start, stop
            self.hAlign = "CENTER"

        def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803
            rows = self.rows
            self.width = rows.width
            self.height = rows.header_height + rows.tops[self.stop] - rows.tops[self.start]
            return self.width, self.height

        def split(self, availWidth: float, availHeight: float) -> list[Flowable]:  # noqa: N803
            rows = self.rows
            room = availHeight - rows.header_height
            if room <= 0:
                return []
            tops, start, stop = rows.tops, self.start, self.stop
            end = bisect_right(tops, tops[start] + room, start, stop + 1) - 1
            if end <= start:
                return []  # not even one row under the headings: the next page
            if end >= stop:
                return [self]
            return [PdfRowsTable(rows, start, end), PdfRowsTable(rows, end, stop)]

        def draw(self) -> None:
            canvas, rows = self.canv, self.rows
            width, top = rows.width, self.height
            column_width = rows.column_width
            tops, start, stop = rows.tops, self.start, self.stop
            offset = tops[start]
            header_bottom = top - rows.header_height
            # Row i's top is at header_bottom - (tops[i] - offset).
            bottoms = [header_bottom - (tops[i + 1] - offset) for i in range(start, stop)]

            canvas.saveState()
            canvas.setFillColor(head_background)
            canvas.rect(0, header_bottom, width, rows.header_height, stroke=0, fill=1)
            shaded = canvas.beginPath()
            row_top = header_bottom
            for n, bottom in enumerate(bottoms):
                if n % 2:
                    shaded.rect(0, bottom, width, row_top - bottom)
                row_top = bottom
            canvas.setFillColor(stripe)
            canvas.drawPath(shaded, stroke=0, fill=1)

            xs = [index * column_width + PDF_PAD_X for index in range(len(rows.header))]
            canvas.setFillColor(colors.white)
            head_baseline = top - PDF_PAD_Y - PDF_FONT_SIZE
            text = canvas.beginText(xs[0], head_baseline)
            text.setFont(PDF_HEAD_FONT, PDF_FONT_SIZE, PDF_LEADING)
            for x, (paragraph, height, lines) in zip(xs, rows.header, strict=True):
                if lines is None:
                    paragraph.drawOn(canvas, x, top - PDF_PAD_Y - height)
                    continue
                for n, piece in enumerate(lines):
                    text.setTextOrigin(x, head_baseline - n * PDF_LEADING)
                    text.textLine(piece)
            canvas.drawText(text)

            canvas.setFillColor(colors.black)
            baseline = header_bottom - PDF_PAD_Y - PDF_FONT_SIZE
            # The text object starts where the first cell is, as a text extractor reads a jump
            # to the page's corner and back as a gap before the first cell.
            text = canvas.beginText(xs[0], baseline)
            text.setFont(PDF_FONT, PDF_FONT_SIZE, PDF_LEADING)
            origin, line = text.setTextOrigin, text.textLine
            for i in range(start, stop):
                y = baseline - (tops[i] - offset)
                for x, cell in zip(xs, rows.cells[i], strict=False):
                    if cell.__class__ is str:
                        if cell:
                            origin(x, y)
                            line(cell)
                    else:
                        for n, piece in enumerate(cell):
                            if piece:
                                origin(x, y - n * PDF_LEADING)
                                line(piece)
            canvas.drawText(text)

            bottom = bottoms[-1] if bottoms else header_bottom
            grid = canvas.beginPath()
            for y in (top, header_bottom, *bottoms):
                grid.moveTo(0, y)
                grid.lineTo(width, y)
            for index in range(len(rows.header) + 1):
                x = width if index == len(rows.header) else index * column_width
                grid.moveTo(x, bottom)
                grid.lineTo(x, top)
            canvas.setLineCap(1)
            canvas.setLineJoin(1)
            canvas.setStrokeColor(colors.grey)
            canvas.setLineWidth(PDF_GRID_WIDTH)
            canvas.drawPath(grid, stroke=1, fill=0)
            canvas.restoreState()

    return PdfRowsTable


def write_pdf(
    table: Table,
    out: BinaryIO,
    generated_at: datetime | None = None,
    generated_by: str | None = None,
    zone: ZoneInfo | None = None,
    **_: Any,
) -> int:
    """The title, the filters in words and the time it was made (times in ``zone``, the
    reader's, when given; else UTC), then each part's table with
    its column headings repeated at the top of every page, and "Page N of M" at the foot.

    A cell longer than its column is wrapped onto lines of as many characters as the column
    holds. The rows are laid out once and drawn straight onto each page (a reportlab table
    measures and styles every cell again for each page it is split over)."""
    from xml.sax.saxutils import escape

    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    parts = table.parts()
    widest = max((len(part.columns) for part in parts), default=1)
    pagesize = landscape(A4) if widest > 5 else A4
    margin = 12 * mm
    usable = pagesize[0] - 2 * margin
    frame_padding = 6  # SimpleDocTemplate's frame pads each side by 6 points
    page_room = pagesize[1] - 2 * margin - 2 * frame_padding
    styles = getSampleStyleSheet()
    generated = _generated(generated_at, zone) + (f" by {generated_by}" if generated_by else "")
    story: list[Any] = [
        Paragraph(escape(table.title), styles["Title"]),
        Paragraph(f"<b>Filters:</b> {escape(filters_in_words(table.filters))}", styles["Normal"]),
        Paragraph(f"<b>Generated:</b> {escape(generated)}", styles["Normal"]),
        Spacer(1, 4 * mm),
    ]
    rows_table = _pdf_rows_flowable()
    written = 0
    for part in parts:
        if len(parts) > 1:
            story.append(Paragraph(escape(part.title), styles["Heading3"]))
        rows = _PdfRows([str(c) for c in part.columns] or [""], usable, page_room, zone)
        for row in part.rows:
            rows.add(row)
        written += rows.count
        story.append(rows_table(rows, 0, len(rows.cells)))
        if not rows.count:
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


# ---- one entry point ----------------------------------------------------------------------

WRITERS: dict[str, Callable[..., int]] = {"csv": write_csv, "xlsx": write_xlsx, "pdf": write_pdf}


def write_table(
    fmt: str,
    table: Table,
    out: BinaryIO,
    generated_at: datetime | None = None,
    generated_by: str | None = None,
    zone: ZoneInfo | None = None,
) -> int:
    """Write ``table`` in ``fmt`` (csv, xlsx or pdf) to ``out``; returns the rows written.
    ``zone``: the reader's, for the times of a PDF (a CSV and a workbook stay UTC)."""
    return WRITERS[fmt](table, out, generated_at=generated_at, generated_by=generated_by, zone=zone)

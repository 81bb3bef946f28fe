"""Importing leads from CSV or XLSX: every row checked first, a report of each bad row (row
number, field, reason), then all the valid rows or nothing, in one transaction."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from app.core.errors import ConflictError, DomainError, FieldError
from app.extensions import db
from app.leads.models import Lead
from app.leads.services import prepare_lead
from app.security.scoping import Actor

COLUMNS = ("first_name", "last_name", "email", "phone", "company", "investment_capacity", "notes")
REQUIRED_COLUMNS = ("first_name", "last_name")
MAX_ROWS = 200_000


@dataclass(frozen=True)
class RowProblem:
    row: int  # as a spreadsheet numbers it: the header is row 1
    field: str
    reason: str
    duplicate: bool = False


@dataclass
class ImportReport:
    total: int = 0
    valid: list[Lead] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def duplicates(self) -> list[RowProblem]:
        return [p for p in self.problems if p.duplicate]

    @property
    def invalid(self) -> list[RowProblem]:
        return [p for p in self.problems if not p.duplicate]


def _header(name: object) -> str:
    return str(name or "").strip().lower().replace(" ", "_").replace("-", "_")


def read_rows(filename: str, data: bytes) -> list[dict[str, str]]:
    """Rows of a CSV (UTF-8) or XLSX file as dicts keyed by the known column names."""
    if filename.lower().endswith(".xlsx"):
        from openpyxl import load_workbook

        try:
            sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).active
        except Exception as exc:  # not a workbook whatever its name says
            raise FieldError(
                f"is not a readable XLSX workbook ({exc.__class__.__name__}).", "file"
            ) from exc
        values = sheet.iter_rows(values_only=True)
        headers = [_header(h) for h in next(values, ())]
        rows = [
            dict(zip(headers, ["" if v is None else str(v) for v in row], strict=False))
            for row in values
        ]
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FieldError("is not UTF-8 text: save the CSV as UTF-8.", "file") from exc
        reader = csv.DictReader(io.StringIO(text))
        headers = [_header(h) for h in reader.fieldnames or []]
        rows = [dict(zip(headers, row.values(), strict=False)) for row in reader]
    missing = [c for c in REQUIRED_COLUMNS if c not in headers]
    if missing:
        raise FieldError(
            f"has no column {', '.join(missing)} (columns: {', '.join(COLUMNS)}).", "file"
        )
    unknown = [h for h in headers if h and h not in COLUMNS]
    if unknown:
        raise FieldError(
            f"has unknown column(s) {', '.join(unknown)} (allowed: {', '.join(COLUMNS)}).", "file"
        )
    if len(rows) > MAX_ROWS:
        raise FieldError(
            f"has {len(rows):,} rows; split it into files of at most {MAX_ROWS:,}.", "file"
        )
    return rows


def validate_rows(
    rows: Iterable[dict[str, str]],
    actor: Actor | None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Check every row as a lead entered by ``actor`` (rules, duplicates in the database and
    within the file); nothing is written."""
    report = ImportReport()
    seen: dict[tuple[str, str], int] = {}
    with db.session.no_autoflush:
        for index, row in enumerate(rows, start=2):
            report.total += 1
            values = {c: (row.get(c) or "").strip() or None for c in COLUMNS}
            lead = Lead(**values, source="import", status="new")
            try:
                prepare_lead(lead, actor)
            except ConflictError as exc:
                report.problems.append(
                    RowProblem(index, exc.field or "", exc.message, duplicate=True)
                )
            except DomainError as exc:
                report.problems.append(RowProblem(index, exc.field or "", exc.message))
            else:
                clash = next(
                    (
                        seen[(f, v)]
                        for f, v in (("email", lead.email), ("phone", lead.phone))
                        if v and (f, v) in seen
                    ),
                    None,
                )
                if clash is not None:
                    report.problems.append(
                        RowProblem(
                            index,
                            "email" if lead.email else "phone",
                            f"repeats row {clash} of this file",
                            True,
                        )
                    )
                else:
                    for f, v in (("email", lead.email), ("phone", lead.phone)):
                        if v:
                            seen[(f, v)] = index
                    report.valid.append(lead)
            if progress:
                progress(1)
    return report


def import_valid(report: ImportReport) -> int:
    """Add every valid lead of ``report``; the caller commits (all of them, or on error none)."""
    db.session.add_all(report.valid)
    db.session.flush()
    return len(report.valid)

"""The registry of tabular reports.

A report is a function of its filters that answers a ``Table``: a title, column headings and
rows of plain values (``str``, ``int``, ``Decimal``, ``date``, ``datetime`` or ``None``), computed
by SQL aggregation under the caller's row scoping. Writers (CSV, XLSX, PDF), the export screens and
scheduled report e-mails take any registered report by its key; a desk adds one with
``register_report``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Filters = Mapping[str, str]
"""Filter name -> value as it appears in the URL (``date_from``, ``branch``, ``agent``...)."""


@dataclass(frozen=True)
class Table:
    title: str
    columns: Sequence[str]
    rows: Iterable[Sequence[Any]]
    filters: Mapping[str, str] = field(default_factory=dict)
    """Filters in words (``{"Branch": "Mumbai"}``), printed above the rows of a PDF."""
    sections: Sequence[Table] = ()
    """A report in parts (the KYC report: counts by branch, cases waiting, documents expiring):
    each part has its own title, columns and rows, and ``columns``/``rows`` are left empty. A CSV
    writes the parts one after another, an XLSX one sheet each, a PDF one table each."""

    def parts(self) -> Sequence[Table]:
        """The tables to write: the sections, or this table itself."""
        return self.sections or (self,)


@dataclass(frozen=True)
class Report:
    key: str
    title: str
    resource: str
    """The permission resource (``app.security.roles.RESOURCES``) a user must be able to read."""
    build: Callable[[Filters], Table]
    page: str | None = None
    """The endpoint of the report's own screen (``KycReportView.report``), if it has one."""


REPORTS: dict[str, Report] = {}


def register_report(
    key: str,
    title: str,
    resource: str,
    build: Callable[[Filters], Table],
    page: str | None = None,
) -> Report:
    """Add a report under ``key`` (unique; a second registration of the same key is refused).
    ``build`` raises a ``DomainError`` naming a filter it cannot read (a 400 for the export)."""
    if key in REPORTS and REPORTS[key].build is not build:
        raise ValueError(f"report {key!r} is already registered")
    report = Report(key, title, resource, build, page)
    REPORTS[key] = report
    return report


def get_report(key: str) -> Report | None:
    return REPORTS.get(key)

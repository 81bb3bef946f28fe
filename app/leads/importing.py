"""Reading and checking a file of leads (CSV or XLSX), and inserting the rows that passed.

The check is set-based: every row is cleaned and checked by ``prepare_lead`` (the one source of
the field rules) without its per-row duplicate query; the e-mails and phones are then looked up
in chunks (``find_exact_duplicates``: a few ``IN`` queries per chunk) against open leads and
clients, and against the earlier rows of the file.

Counting rule (what the report's numbers mean): every row is counted once.

* a row is a **duplicate** when its e-mail or phone (when it normalises) belongs to an open lead
  or a client, or to an earlier *valid* row of the file, whatever else is wrong with it (its
  other problems are listed too);
* otherwise it is **invalid** when any field is refused;
* otherwise it is **valid** and will be imported.

An earlier row that is itself refused is not imported, so a later row with the same e-mail is
not its repeat: it is the first good copy of that person. Re-importing a file after its valid
rows went in therefore reports every row whose e-mail or phone reached the database (the
imported rows, the duplicates, and the bad rows that share an e-mail or phone with them) as a
duplicate.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from sqlalchemy import insert

from app.core.errors import ConflictError, DomainError, FieldError
from app.core.types import utcnow
from app.extensions import db
from app.leads.models import Lead
from app.leads.services import (
    campaign_for_code,
    check_lead_email,
    check_lead_phone,
    duplicate_conflict,
    find_exact_duplicates,
    prepare_lead,
)
from app.security.scoping import Actor

COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "investment_capacity",
    "notes",
    "campaign",
)
"""``campaign``: the reference (UTM code) of the campaign the leads came from, if any."""
REQUIRED_COLUMNS = ("first_name", "last_name")
MAX_ROWS = 200_000
CHUNK_ROWS = 500  # rows per duplicate look-up (each of the four IN lists) and per progress step
ZIP_MAGIC = b"PK\x03\x04"  # an XLSX workbook is a ZIP archive
FORMATS = ("csv", "xlsx")


@dataclass(frozen=True)
class RowProblem:
    row: int  # as a spreadsheet numbers it: the header is row 1
    field: str
    reason: str
    duplicate: bool = False
    existing: dict | None = None  # the open lead or client it duplicates: type, id, url


@dataclass
class ImportReport:
    total: int = 0
    valid: list[Lead] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def duplicate_rows(self) -> set[int]:
        return {p.row for p in self.problems if p.duplicate}

    @property
    def invalid_rows(self) -> set[int]:
        return {p.row for p in self.problems} - self.duplicate_rows

    @property
    def problem_rows(self) -> set[int]:
        return {p.row for p in self.problems}

    def problems_json(self) -> str:
        return json.dumps([asdict(p) for p in self.problems], separators=(",", ":"))


def file_format(filename: str) -> str:
    """``csv`` or ``xlsx`` from the file's name; FieldError for anything else."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension not in FORMATS:
        raise FieldError("must be a .csv (UTF-8 text) or .xlsx (Excel) file.", "file")
    return extension


def check_upload(filename: str, data: bytes, max_bytes: int) -> str:
    """The file's format if it may be imported, judged by its bytes as well as its name."""
    fmt = file_format(filename)
    if not data:
        raise FieldError("is empty (0 bytes).", "file")
    if len(data) > max_bytes:
        raise FieldError(f"is {len(data):,} bytes; the limit is {max_bytes:,} bytes.", "file")
    if fmt == "xlsx" and not data.startswith(ZIP_MAGIC):
        raise FieldError("is named .xlsx but is not an Excel workbook.", "file")
    if fmt == "csv" and (data.startswith(ZIP_MAGIC) or b"\x00" in data[:4096]):
        raise FieldError("is named .csv but is not text (an Excel file? name it .xlsx).", "file")
    return fmt


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _header(name: object) -> str:
    return str(name or "").strip().lower().replace(" ", "_").replace("-", "_")


def read_rows(filename: str, data: bytes) -> list[dict[str, str]]:
    """Rows of a CSV (UTF-8) or XLSX file as dicts keyed by the known column names."""
    if file_format(filename) == "xlsx":
        from openpyxl import load_workbook

        try:
            # data_only=False: a formula cell is read as its text ("=HYPERLINK(...)"), kept as
            # typed and never evaluated (its cached result may be missing or not what it shows).
            sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=False).active
            values = sheet.iter_rows(values_only=True)
            headers = [_header(h) for h in next(values, ())]
            rows = [
                dict(zip(headers, ["" if v is None else str(v) for v in row], strict=False))
                for row in values
                if any(v not in (None, "") for v in row)
            ]
        except Exception as exc:  # not a workbook whatever its name says
            raise FieldError(
                f"is not a readable XLSX workbook ({exc.__class__.__name__}).", "file"
            ) from exc
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FieldError("is not UTF-8 text: save the CSV as UTF-8.", "file") from exc
        try:
            reader = csv.reader(io.StringIO(text))
            headers = [_header(h) for h in next(reader, [])]
            rows = [dict(zip(headers, row, strict=False)) for row in reader if any(row)]
        except csv.Error as exc:
            raise FieldError(f"is not a readable CSV file ({exc}).", "file") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in headers]
    separator = next((s for s in (";", "\t", "|") if len(headers) == 1 and s in headers[0]), None)
    if missing and separator:
        shown = "tabs" if separator == "\t" else f"'{separator}'"
        raise FieldError(
            f"is separated by {shown}, not commas: save it as CSV (comma-separated values).",
            "file",
        )
    if missing:
        raise FieldError(
            f"has no column {', '.join(missing)} (columns: {', '.join(COLUMNS)}).", "file"
        )
    unknown = [h for h in headers if h and h not in COLUMNS]
    if unknown:
        raise FieldError(
            f"has unknown column(s) {', '.join(unknown)} (allowed: {', '.join(COLUMNS)}).", "file"
        )
    if not rows:
        raise FieldError("has a header but no rows.", "file")
    if len(rows) > MAX_ROWS:
        raise FieldError(
            f"has {len(rows):,} rows; split it into files of at most {MAX_ROWS:,}.", "file"
        )
    return rows


@dataclass
class _Row:
    number: int
    lead: Lead | None  # None when a rule refused it
    email: str | None  # normalised, when it normalises
    phone: str | None
    problems: list[RowProblem]


def _prepare_row(
    number: int,
    raw: dict[str, str],
    actor: Actor | None,
    agent_branches: dict[int, int | None],
    campaigns: dict[str, int | DomainError],
) -> _Row:
    values = {c: (raw.get(c) or "").strip() or None for c in COLUMNS}
    code = values.pop("campaign")
    lead = Lead(**values, source="import", status="new")
    if code:
        if code not in campaigns:
            try:
                campaigns[code] = campaign_for_code(code)
            except DomainError as exc:
                campaigns[code] = exc
        found = campaigns[code]
        if isinstance(found, DomainError):
            return _Row(number, None, None, None, [RowProblem(number, "campaign", found.message)])
        lead.campaign_id = found
    if actor is not None:
        lead.branch_id = actor.branch_id  # an admin's import goes to their own branch
    try:
        prepare_lead(lead, actor, check_duplicates=False, agent_branches=agent_branches)
    except DomainError as exc:
        problems = [RowProblem(number, exc.field or "", exc.message)]
    else:
        return _Row(number, lead, lead.email, lead.phone, [])
    # Refused: still find its e-mail and phone (if they normalise) for the duplicate check, and
    # name their own problems if prepare_lead stopped at another field first.
    normalised: dict[str, str | None] = {}
    for name, check in (("email", check_lead_email), ("phone", check_lead_phone)):
        try:
            normalised[name] = check(values[name])
        except DomainError as exc:
            normalised[name] = None
            if exc.field != problems[0].field:
                problems.append(RowProblem(number, exc.field or name, exc.message))
    return _Row(number, None, normalised["email"], normalised["phone"], problems)


def check_rows(
    rows: Sequence[dict[str, str]],
    actor: Actor | None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Check every row as a lead entered by ``actor``: field rules, duplicates in the database
    (open leads and clients, every branch) and within the file. Nothing is written."""
    report = ImportReport(total=len(rows))
    seen: dict[tuple[str, str], int] = {}  # (field, value) -> row number of an earlier valid row
    agent_branches: dict[int, int | None] = {}
    campaigns: dict[str, int | DomainError] = {}  # reference -> campaign id, once per file
    with db.session.no_autoflush:
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = [
                _prepare_row(start + offset + 2, raw, actor, agent_branches, campaigns)
                for offset, raw in enumerate(rows[start : start + CHUNK_ROWS])
            ]
            existing = find_exact_duplicates(
                (r.email for r in chunk if r.email), (r.phone for r in chunk if r.phone)
            )
            for row in chunk:
                duplicate = _duplicate_problem(row, existing, seen)
                if duplicate is not None:
                    report.problems.append(duplicate)
                report.problems.extend(row.problems)
                if duplicate is None and row.lead is not None:
                    for name in ("email", "phone"):
                        value = getattr(row, name)
                        if value:
                            seen[(name, value)] = row.number
                    report.valid.append(row.lead)
            if progress:
                progress(len(chunk))
    return report


def _duplicate_problem(
    row: _Row,
    existing: dict[tuple[str, str], tuple[str, int, str]],
    seen: dict[tuple[str, str], int],
) -> RowProblem | None:
    keys = [(name, getattr(row, name)) for name in ("email", "phone") if getattr(row, name)]
    for key in keys:
        if key in existing:
            conflict: ConflictError = duplicate_conflict(*existing[key])
            return RowProblem(row.number, key[0], conflict.message, True, conflict.existing)
    for key in keys:
        if key in seen:
            return RowProblem(row.number, key[0], f"repeats row {seen[key]} of this file", True)
    return None


_INSERTED_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "source",
    "status",
    "score",
    "score_breakdown",
    "investment_capacity",
    "assigned_agent_id",
    "branch_id",
    "notes",
    "campaign_id",
)


def lead_values(lead: Lead) -> dict:
    """The columns ``insert_leads`` writes, from a lead ``prepare_lead`` has checked."""
    return {name: getattr(lead, name) for name in _INSERTED_COLUMNS}


def _actor_key(actor: Actor | None) -> list:
    """What about the uploader changes how ``prepare_lead`` treats a row (owner, branch)."""
    if actor is None:
        return []
    return [actor.user_id, sorted(actor.roles), actor.branch_id]


def pack_checked(report: ImportReport, actor: Actor | None) -> bytes:
    """The valid rows of a check as ``prepare_lead`` left them, compressed, for the import.

    The import runs the same rules on the same bytes for the same uploader, so it need not clean
    and check every field again: it re-checks only what can change meanwhile (duplicates of
    rows written since) and falls back to a full check when the uploader's roles or branch
    changed (``unpack_checked`` answers None)."""
    payload = {
        "actor": _actor_key(actor),
        "columns": list(_INSERTED_COLUMNS),
        "rows": [[lead_values(lead)[name] for name in _INSERTED_COLUMNS] for lead in report.valid],
    }
    return zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 1)


def unpack_checked(blob: bytes | None, actor: Actor | None) -> list[dict] | None:
    """The rows ``pack_checked`` stored, or None when they cannot be trusted for this import
    (none stored, another format, or the uploader's roles or branch changed since)."""
    if not blob:
        return None
    try:
        payload = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError):
        return None
    if payload.get("columns") != list(_INSERTED_COLUMNS) or payload.get("actor") != _actor_key(
        actor
    ):
        return None
    return [dict(zip(_INSERTED_COLUMNS, row, strict=True)) for row in payload["rows"]]


def count_new_duplicates(
    rows: Sequence[dict], progress: Callable[[int], None] | None = None
) -> int:
    """How many of these checked rows now share an e-mail or phone with an open lead or a
    client (written since the check). Set-based, ``CHUNK_ROWS`` rows per look-up."""
    changed = 0
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start : start + CHUNK_ROWS]
        existing = find_exact_duplicates(
            (r["email"] for r in chunk if r["email"]), (r["phone"] for r in chunk if r["phone"])
        )
        if existing:
            changed += sum(
                1
                for r in chunk
                if ("email", r["email"]) in existing or ("phone", r["phone"]) in existing
            )
        if progress:
            progress(len(chunk))
    return changed


def insert_leads(
    rows: Sequence[dict],
    lead_import_id: int | None = None,
    chunk_rows: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert checked leads (``lead_values`` dicts) in chunks, inside the caller's transaction
    (the caller commits).

    A bulk INSERT, not ``add_all``: it does not go through the ORM flush, so the audit log gets
    no row per lead; the caller records one event for the whole import instead, and every lead
    keeps ``lead_import_id`` to say where it came from.
    """
    now = utcnow()
    stamp = {"lead_import_id": lead_import_id, "created_at": now, "updated_at": now}
    for start in range(0, len(rows), chunk_rows):
        batch = rows[start : start + chunk_rows]
        db.session.execute(insert(Lead), [{**row, **stamp} for row in batch])
        if progress:
            progress(len(batch))
    return len(rows)

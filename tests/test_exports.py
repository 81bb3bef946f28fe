"""Exports of list screens and reports: the list's own filters, order and rows, formulas made
inert, personal data masked as the role requires, PDFs with their title, filters, time and page
numbers, background exports with their page, owner-only and expiring downloads, and the audit."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select

from app.audit.models import AuditLog
from app.clients.models import Client
from app.clients.services import prepare_client
from app.core.storage import get_storage
from app.core.types import utcnow
from app.exports.models import ExportJob
from app.exports.writers import neutralise, write_table
from app.extensions import db
from app.reports.registry import Table
from tests.support import login, make_branch, make_lead, make_staff

FORMULA = '=HYPERLINK("http://x")'


@pytest.fixture
def world(app):
    branch = make_branch("MUM")
    other_branch = make_branch("SYD", tz="Australia/Sydney")
    people = {
        "agent": make_staff("Agent", branch),
        "agent2": make_staff("Agent", branch),
        "manager": make_staff("Manager", branch),
        "auditor": make_staff("Auditor", branch),
        "admin": make_staff("Admin", branch),
        "syd_agent": make_staff("Agent", other_branch),
    }
    agent = people["agent"]
    make_lead(agent, first_name="Zara", last_name="Alpha", email="zara@alpha.example")
    make_lead(agent, first_name=FORMULA, last_name="Formula")
    make_lead(agent, first_name="Amy", last_name="Beta", status="contacted")
    make_lead(agent, first_name="Moe", last_name="Gamma", phone="+91 98765 43210")
    make_lead(people["agent2"], first_name="Otto", last_name="Other")
    make_lead(people["syd_agent"], first_name="Sid", last_name="Sydney")
    db.session.commit()
    return {name: staff.user.username for name, staff in people.items()} | {"_staff": people}


def export_links(page: str) -> dict[str, str]:
    return {
        fmt: html.unescape(href)
        for fmt, href in re.findall(r'id="export-(csv|xlsx|pdf)" href="([^"]+)"', page)
    }


def csv_rows(response) -> list[list[str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff"), "a CSV export starts with a UTF-8 byte order mark"
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def workbook(response):
    return load_workbook(io.BytesIO(response.get_data()))


def pdf_pages(response) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(response.get_data())).pages]


def export_events(actor_name: str) -> list[AuditLog]:
    return list(
        db.session.scalars(
            select(AuditLog)
            .where(AuditLog.action == "export", AuditLog.actor_name == actor_name)
            .order_by(AuditLog.seq)
        )
    )


# ---- writers ------------------------------------------------------------------------------


def test_writers_neutralise_formulas_and_keep_numbers_exact():
    table = Table(
        "Sample",
        ["text", "amount", "count"],
        [
            [FORMULA, Decimal("12345678901234.57"), 3],
            ["+61 2 9999 0000", Decimal("-0.10"), -4],
            ["@SUM(A1)", Decimal("1.005"), 0],
            ["\tcmd", None, None],
            ["-1+1", Decimal("0.00"), 7],
        ],
    )
    out = io.BytesIO()
    assert write_table("csv", table, out) == 5
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    assert rows[1] == ["'" + FORMULA, "12345678901234.57", "3"]
    assert rows[2] == ["'+61 2 9999 0000", "-0.10", "-4"]
    assert rows[3][0] == "'@SUM(A1)" and rows[3][1] == "1.005"
    assert rows[4][0] == "'\tcmd" and rows[4][1:] == ["", ""]
    assert rows[5] == ["'-1+1", "0.00", "7"]
    assert neutralise("plain text") == "plain text"

    out = io.BytesIO()
    write_table("xlsx", table, out)
    sheet = load_workbook(io.BytesIO(out.getvalue()))["Sample"]
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert not [c for c in cells if c.data_type == "f"], "no cell is a formula"
    assert sheet["A2"].value == FORMULA and sheet["A2"].data_type == "s"
    assert sheet["B2"].data_type == "n" and sheet["B2"].number_format == "#,##0.00"
    assert sheet["B3"].value == -0.1 and sheet["C3"].value == -4


def test_a_table_in_parts_is_one_csv_one_workbook_sheet_each_and_one_pdf():
    table = Table(
        "Two parts",
        (),
        (),
        {"Branch": "Mumbai"},
        sections=(
            Table("Counts", ["Branch", "Clients"], [["Mumbai", 3]]),
            Table("People", ["Name"], [["Asha"], ["Ravi"]]),
        ),
    )
    out = io.BytesIO()
    assert write_table("csv", table, out) == 3
    text = out.getvalue().decode("utf-8-sig")
    assert text.splitlines() == [
        "Counts",
        "Branch,Clients",
        "Mumbai,3",
        "",
        "People",
        "Name",
        "Asha",
        "Ravi",
    ]
    out = io.BytesIO()
    write_table("xlsx", table, out)
    book = load_workbook(io.BytesIO(out.getvalue()))
    assert book.sheetnames == ["Counts", "People", "About"]
    assert [c.value for c in book["About"]["B"]][:2] == ["Two parts", "Branch: Mumbai"]
    out = io.BytesIO()
    write_table("pdf", table, out)
    page = PdfReader(io.BytesIO(out.getvalue())).pages[0].extract_text()
    assert "Counts" in page and "People" in page and "Ravi" in page


def pdf_text_positions(data: bytes) -> list[list[tuple[str, float, float]]]:
    """Each page's pieces of text with where they start on the page (x, y in points)."""
    pages = []
    for page in PdfReader(io.BytesIO(data)).pages:
        pieces: list[tuple[str, float, float]] = []

        def visit(text, cm, tm, font, size, pieces=pieces):
            if text.strip():
                x = cm[0] * tm[4] + cm[2] * tm[5] + cm[4]
                y = cm[1] * tm[4] + cm[3] * tm[5] + cm[5]
                pieces.append((text.strip(), x, y))

        page.extract_text(visitor_text=visit)
        pages.append(pieces)
    return pages


def test_a_long_pdf_repeats_the_headings_numbers_its_pages_and_keeps_the_rows_in_order():
    columns = ["First name", "Last name", "E-mail", "Phone", "Status", "Amount", "Created"]
    note = "Asked for a call back about investments in the new fund next week"
    rows = [
        [
            f"Row{n:04d}",
            note if n == 7 else "Lead",
            "a***@example.com",
            "********3210",
            "contacted",
            Decimal("1234567.50") if n == 3 else Decimal("-0.10"),
            utcnow().replace(year=2026, month=1, day=2, hour=3, minute=4),
        ]
        for n in range(1, 301)
    ]
    out = io.BytesIO()
    assert write_table("pdf", Table("Leads", columns, iter(rows)), out) == 300
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(out.getvalue())).pages]
    assert len(pages) >= 5

    for number, text in enumerate(pages, start=1):
        assert all(heading in text for heading in columns), f"headings on page {number}"
        assert f"Page {number} of {len(pages)}" in text
    # Every row once, in order, and the same number on every full page.
    per_page = [re.findall(r"Row\d{4}", text) for text in pages]
    assert [name for page in per_page for name in page] == [row[0] for row in rows]
    counts = [len(page) for page in per_page]
    assert len(set(counts[1:-1])) == 1 and 0 < counts[-1] <= counts[1]
    assert len(pages) == 1 + -(-(300 - counts[0]) // counts[1])
    # Values as given: masked contacts untouched, money with its exact digits.
    first = pages[0]
    assert "a***@example.com" in first and "********3210" in first
    assert "1,234,567.50" in first and "-0.10" in first
    assert "2026-01-02 03:04 UTC" in first
    # A cell longer than its column is wrapped on word boundaries, nothing lost.
    lines = [line for line in first.splitlines() if line and line in note]
    assert len(lines) >= 2 and " ".join(lines) == note
    assert all(len(line) <= 31 for line in lines)  # a seventh of a landscape page

    # No row runs into the page number at the foot; every line starts at its column's edge.
    for pieces in pdf_text_positions(out.getvalue()):
        cells = [(x, y) for text, x, y in pieces if not text.startswith("Page ")]
        footer = [y for text, _, y in pieces if text.startswith("Page ")]
        assert len(footer) == 1
        assert min(y for _, y in cells if y < 500) > footer[0] + 8
        starts = sorted({round(x) for x, y in cells if y < 500})  # below the title lines
        assert len(starts) == len(columns) and starts[-1] < 841.89 - 34  # landscape A4


def test_a_pdf_row_longer_than_a_page_goes_on_over_the_next_pages():
    story = " ".join(f"word{n:04d}" for n in range(1500))
    table = Table(
        "Notes", ["Client", "Note"], [["Before", "short"], ["Long", story], ["After", "x"]]
    )
    out = io.BytesIO()
    assert write_table("pdf", table, out) == 3
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(out.getvalue())).pages]
    assert len(pages) >= 3
    text = " ".join(pages)
    assert re.findall(r"word\d{4}", text) == [f"word{n:04d}" for n in range(1500)]
    assert text.index("Before") < text.index("word0000") < text.index("After")
    assert all("Client" in page and "Note" in page for page in pages)


# ---- list screens --------------------------------------------------------------------------


def new_leads_url(app) -> str:
    """The Leads list filtered on status "equal to" new, as FAB's search form makes it."""
    from app.core.crud import filtered_list_url

    view = next(v for v in app.appbuilder.baseviews if v.endpoint == "LeadView")
    with app.test_request_context():
        return filtered_list_url(view, {"status": "new"})


def test_export_buttons_carry_the_lists_filters_and_order(app, client, world):
    login(client, world["agent"])
    url = new_leads_url(app) + "&_oc_LeadView=last_name&_od_LeadView=desc&page_LeadView=0"
    page = client.get(url).get_data(as_text=True)
    links = export_links(page)
    assert set(links) == {"csv", "xlsx", "pdf"}
    flt = url.split("?")[1].split("&")[0]
    assert flt.endswith("_status=new") and flt in links["csv"]
    assert "_oc_LeadView=last_name" in links["csv"] and "_od_LeadView=desc" in links["csv"]
    assert "page_LeadView" not in links["csv"]

    response = client.get(links["csv"])
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment;" in response.headers["Content-Disposition"]
    rows = csv_rows(response)
    assert rows[0][:4] == ["First Name", "Last Name", "Email", "Phone"]
    # Status "new" only (Amy Beta is contacted), last name descending, the agent's own only.
    assert [row[1] for row in rows[1:]] == ["Gamma", "Formula", "Alpha"]
    assert rows[1][4] == "New"  # the list's own display of the status

    event = export_events(world["agent"])[-1]
    assert event.record_type == "lead"
    assert "Leads exported as CSV, 3 rows" in event.detail
    assert "Status: equal to new" in event.detail
    assert "Order: Last Name, descending" in event.detail


def test_an_agents_export_holds_only_their_rows_and_a_managers_their_branch(client, world):
    login(client, world["agent"])
    names = {row[0] for row in csv_rows(client.get("/leadview/export/csv"))[1:]}
    assert names == {"Zara", "'" + FORMULA, "Amy", "Moe"}
    client.get("/logout/")
    login(client, world["manager"])
    names = {row[0] for row in csv_rows(client.get("/leadview/export/csv"))[1:]}
    assert "Otto" in names and "Zara" in names and "Sid" not in names


def test_a_lead_and_a_client_named_like_a_formula_come_out_inert(client, world):
    agent = world["_staff"]["agent"]
    db.session.add(
        prepare_client(
            Client(
                name=FORMULA,
                email="formula@client.example",
                branch_id=agent.branch_id,
                relationship_manager_id=agent.user_id,
            )
        )
    )
    db.session.commit()
    login(client, world["agent"])
    for url, column in (("/leadview/export/", 0), ("/clientview/export/", 0)):
        rows = csv_rows(client.get(url + "csv"))
        assert ["'" + FORMULA] == [r[column] for r in rows[1:] if "HYPERLINK" in r[column]]
        book = workbook(client.get(url + "xlsx"))
        sheet = book.worksheets[0]
        formula_cells = [c for row in sheet.iter_rows() for c in row if c.value == FORMULA]
        assert len(formula_cells) == 1 and formula_cells[0].data_type == "s"
        assert not [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]


def test_the_auditors_export_masks_contacts_and_identifiers_are_masked_for_everyone(
    client, world, monkeypatch
):
    login(client, world["auditor"])
    rows = csv_rows(client.get("/leadview/export/csv"))
    zara = next(r for r in rows if r[0] == "Zara")
    moe = next(r for r in rows if r[0] == "Moe")
    assert zara[2] == "z***@alpha.example"
    assert moe[3] == "********3210"
    assert "zara@alpha.example" not in str(rows) and "9876543210" not in str(rows)
    client.get("/logout/")

    login(client, world["manager"])
    rows = csv_rows(client.get("/leadview/export/csv"))
    assert next(r for r in rows if r[0] == "Zara")[2] == "zara@alpha.example"
    client.get("/logout/")

    # Were a list to show a raw identifier column, the export would still mask it, for Admin too.
    agent = world["_staff"]["agent"]
    db.session.add(
        prepare_client(
            Client(
                name="Pan Holder",
                pan="ABCPE1234F",
                branch_id=agent.branch_id,
                relationship_manager_id=agent.user_id,
            )
        )
    )
    db.session.commit()
    view = next(v for v in client.application.appbuilder.baseviews if v.endpoint == "ClientView")
    monkeypatch.setattr(view, "list_columns", ["name", "pan", "pan_masked"])
    login(client, world["admin"])
    rows = csv_rows(client.get("/clientview/export/csv"))
    assert rows[1] == ["Pan Holder", "ABCPXXXX4F", "ABCPXXXX4F"]


def test_a_pdf_has_the_title_filters_time_and_page_numbers(app, client, world):
    agent = world["_staff"]["agent"]
    for n in range(90):
        make_lead(agent, first_name=f"Bulk{n:02d}", last_name="Lead")
    db.session.commit()
    login(client, world["agent"])
    page = client.get(new_leads_url(app)).get_data(as_text=True)
    response = client.get(export_links(page)["pdf"])
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    pages = pdf_pages(response)
    assert len(pages) >= 2
    first = pages[0]
    assert "Leads" in first
    assert "Filters: Status: equal to new" in first
    # in the exporting agent's time (Mumbai): "Generated: 06 Dec 2026 14:05 IST"
    assert re.search(r"Generated: \d{2} \w{3} \d{4} \d{2}:\d{2} IST", first)
    assert f"Page 1 of {len(pages)}" in first
    assert f"Page {len(pages)} of {len(pages)}" in pages[-1]
    assert "First Name" in pages[1], "column headings repeat on every page"
    assert "Amy" not in " ".join(pages)  # contacted, filtered out


def test_every_list_screen_exports(client, world):
    """Every generated list, the plain ones (audit log, outbox, message log, documents, lead
    imports, task lists) included, offers the buttons and answers a file."""
    login(client, world["admin"])
    lists = [
        v
        for v in client.application.appbuilder.baseviews
        if hasattr(v, "export_list") and getattr(v, "blueprint", None)
    ]
    endpoints = {v.endpoint for v in lists}
    assert {
        "AuditLogView",
        "OutboxView",
        "MessageLogView",
        "DocumentView",
        "LeadImportView",
        "MyTasksView",
        "OverdueTasksView",
        "LeadView",
        "ClientView",
        "JournalView",
        "ReportScheduleView",
    } <= endpoints
    for view in lists:
        page = client.get(f"{view.route_base}/list/")
        assert page.status_code == 200, view.endpoint
        assert 'id="export-xlsx"' in page.get_data(as_text=True), view.endpoint
        response = client.get(f"{view.route_base}/export/xlsx")
        if response.status_code == 302:  # a long list (the audit log grows all session long)
            job_id = int(re.search(r"/exports/(\d+)$", response.headers["Location"])[1])
            assert db.session.get(ExportJob, job_id).status == "done", view.endpoint
            response = client.get(f"/exports/{job_id}/download")
        assert response.status_code == 200, view.endpoint
        assert workbook(response).worksheets[0].max_row >= 1
    assert client.get("/leadview/export/docx").status_code == 404


def test_reading_the_list_is_needed_to_export_it(client, world):
    login(client, world["agent"])
    assert client.get("/auditlogview/export/csv").status_code == 403
    assert client.get("/journalview/export/csv").status_code == 403
    assert not [e for e in export_events(world["agent"]) if e.record_type == "audit_log"]


# ---- background exports --------------------------------------------------------------------


def _large_export(client, world, app, monkeypatch, fmt="csv"):
    monkeypatch.setitem(app.config, "CRM_EXPORT_INLINE_ROWS", 3)
    login(client, world["agent"])
    response = client.get(f"/leadview/export/{fmt}?_oc_LeadView=first_name&_od_LeadView=asc")
    assert response.status_code == 302
    match = re.search(r"/exports/(\d+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match[1])


def test_a_large_export_becomes_a_job_with_a_page_and_an_owner_only_download(
    app, client, world, monkeypatch
):
    job_id = _large_export(client, world, app, monkeypatch)
    job = db.session.get(ExportJob, job_id)
    assert (job.status, job.total_rows, job.processed_rows) == ("done", 4, 4)
    assert job.storage_key.startswith("exports/") and job.file_name.endswith(".csv")
    assert job.expires_at - utcnow() > timedelta(hours=23)

    page = client.get(f"/exports/{job_id}").get_data(as_text=True)
    assert 'id="export-progress"' in page and 'aria-valuenow="100"' in page
    assert f"/exports/{job_id}/download" in page
    progress = client.get(f"/exports/{job_id}/progress").json
    assert progress["percent"] == 100 and progress["finished"] and progress["download_url"]

    download = client.get(f"/exports/{job_id}/download")
    assert download.status_code == 200
    rows = csv_rows(download)
    assert [r[0] for r in rows[1:]] == ["'" + FORMULA, "Amy", "Moe", "Zara"]  # ordered, own rows

    events = export_events(world["agent"])
    assert f"background export #{job_id}" in events[-1].detail and "4 rows" in events[-1].detail
    downloads = db.session.scalars(
        select(AuditLog).where(
            AuditLog.action == "download",
            AuditLog.record_type == "export_job",
            AuditLog.record_id == str(job_id),
            AuditLog.actor_name == world["agent"],
        )
    ).all()
    assert len(downloads) == 1 and job.file_name in downloads[0].detail

    listing = client.get("/exports/list/").get_data(as_text=True)
    assert "Leads" in listing

    client.get("/logout/")
    login(client, world["agent2"])
    for url in (f"/exports/{job_id}", f"/exports/{job_id}/progress", f"/exports/{job_id}/download"):
        assert client.get(url).status_code == 404, url
    assert "Leads" not in client.get("/exports/list/").get_data(as_text=True).split("</h")[-1]
    client.get("/logout/")
    login(client, world["admin"])
    assert client.get(f"/exports/{job_id}/download").status_code == 404


def test_an_expired_export_answers_410_and_its_file_is_removed(app, client, world, monkeypatch):
    from app.exports.background import remove_expired_exports

    job_id = _large_export(client, world, app, monkeypatch, fmt="xlsx")
    job = db.session.get(ExportJob, job_id)
    key = job.storage_key
    assert get_storage().exists(key)
    job.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert client.get(f"/exports/{job_id}/download").status_code == 410
    assert remove_expired_exports() == 1
    assert not get_storage().exists(key)
    db.session.expire_all()
    assert db.session.get(ExportJob, job_id).status == "expired"
    assert client.get(f"/exports/{job_id}/download").status_code == 410
    assert "has expired" in client.get(f"/exports/{job_id}").get_data(as_text=True)
    assert remove_expired_exports() == 0


def test_storage_deletes_temporary_files_only(app):
    storage = get_storage()
    storage.put("documents/x/1.pdf", b"%PDF", "application/pdf")
    with pytest.raises(ValueError, match="cannot be deleted"):
        storage.delete("documents/x/1.pdf")
    assert storage.exists("documents/x/1.pdf")
    storage.put("exports/1/a.csv", b"a", "text/csv")
    assert storage.delete("exports/1/a.csv") is True
    assert storage.delete("exports/1/a.csv") is False


# ---- reports ---------------------------------------------------------------------------------


def test_a_report_exports_in_every_format_to_those_who_may_read_it(client, world):
    login(client, world["manager"])
    index = client.get("/reports/").get_data(as_text=True)
    assert "Trial balance" in index and "KYC report" in index
    csv_response = client.get("/reports/trial-balance/export/csv?as_of=2026-12-31")
    assert csv_response.status_code == 200
    rows = csv_rows(csv_response)
    assert rows[0] == [
        "code",
        "account",
        "class",
        "currency",
        "debit",
        "credit",
        "balance (debit +)",
    ]
    assert rows[-1][1] == "Total"
    book = workbook(client.get("/reports/trial-balance/export/xlsx?as_of=2026-12-31"))
    assert book.sheetnames[0] == "Trial balance"
    about = {row[0].value: row[1].value for row in book["About"].iter_rows()}
    assert about["Filters"] == "As of: 2026-12-31"
    pages = pdf_pages(client.get("/reports/kyc-report/export/pdf"))
    assert "KYC report" in pages[0] and "Clients by KYC status and branch" in pages[0]
    assert "Page 1 of" in pages[0]

    bad = client.get("/reports/trial-balance/export/csv?as_of=yesterday")
    assert bad.status_code == 400 and "As of" in bad.get_data(as_text=True)
    assert client.get("/reports/no-such-report/export/csv").status_code == 404
    assert client.get("/reports/trial-balance/export/doc").status_code == 404
    assert [e.record_type for e in export_events(world["manager"])] == [
        "trial_balance",
        "trial_balance",
        "kyc_report",
    ]

    client.get("/logout/")
    login(client, world["agent"])
    assert client.get("/reports/trial-balance/export/csv").status_code == 403
    assert "Trial balance" not in client.get("/reports/").get_data(as_text=True)
    client.get("/logout/")
    assert client.get("/reports/trial-balance/export/csv").status_code in (302, 401)


def test_a_large_report_export_runs_as_a_job_too(app, client, world, monkeypatch):
    monkeypatch.setitem(app.config, "CRM_EXPORT_INLINE_ROWS", 3)
    login(client, world["manager"])
    response = client.get("/reports/trial-balance/export/xlsx?as_of=2026-12-31")
    assert response.status_code == 302
    job_id = int(re.search(r"/exports/(\d+)$", response.headers["Location"])[1])
    job = db.session.get(ExportJob, job_id)
    assert (job.source, job.target, job.status) == ("report", "trial-balance", "done")
    assert job.filters_text == "As of: 2026-12-31" and job.total_rows > 3
    book = workbook(client.get(f"/exports/{job_id}/download"))
    assert book["Trial balance"].max_row == job.total_rows + 1
    assert "background export" in export_events(world["manager"])[-1].detail


@pytest.fixture(scope="module")
def s3_endpoint():
    from tests.s3_server import moto_s3_server

    with moto_s3_server() as endpoint:
        yield endpoint


def test_on_s3_the_download_is_a_presigned_link_and_expiry_deletes_the_object(
    app, client, world, monkeypatch, s3_endpoint
):
    import urllib.request
    import uuid

    from app.core.storage import EXTENSION_KEY, S3Storage
    from app.exports.background import remove_expired_exports
    from tests.s3_server import aws_test_credentials

    aws_test_credentials(monkeypatch)
    storage = S3Storage(f"exports-{uuid.uuid4().hex[:12]}", endpoint_url=s3_endpoint)
    storage.ensure_bucket()
    monkeypatch.setitem(app.extensions, EXTENSION_KEY, storage)
    job_id = _large_export(client, world, app, monkeypatch)
    job = db.session.get(ExportJob, job_id)
    key = job.storage_key
    assert storage.exists(key)

    response = client.get(f"/exports/{job_id}/download")
    assert response.status_code == 302
    link = response.headers["Location"]
    assert link.startswith(s3_endpoint) and "X-Amz-Signature" in link
    with urllib.request.urlopen(link) as fetched:  # noqa: S310 (the test's own S3 server)
        body = fetched.read().decode("utf-8-sig")
        assert "attachment" in fetched.headers["Content-Disposition"]
    assert body.splitlines()[0].startswith("First Name,Last Name")
    assert len(body.splitlines()) == 5

    job.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert remove_expired_exports() == 1
    assert not storage.exists(key)
    listing = storage.client.list_objects_v2(Bucket=storage.bucket)
    assert listing.get("KeyCount", 0) == 0


def test_with_the_queue_unreachable_the_exports_page_says_so(app, client, world, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")  # nobody listens there
    job_id = _large_export(client, world, app, monkeypatch)
    job = db.session.get(ExportJob, job_id)
    assert job.status == "failed" and "queue could not be reached" in job.error
    page = client.get(f"/exports/{job_id}").get_data(as_text=True)
    assert "The export failed" in page and "queue could not be reached" in page


def test_the_api_lists_ones_own_background_exports_only(app, client, world, monkeypatch):
    from tests.support import api_token

    job_id = _large_export(client, world, app, monkeypatch)
    client = app.test_client()  # bearer tokens only, no signed-in session
    mine = {"Authorization": f"Bearer {api_token(client, world['agent'])}"}
    listed = client.get("/api/v1/exportjob/", headers=mine).json["result"]
    assert [(row["id"], row["status"], row["total_rows"]) for row in listed] == [
        (job_id, "done", 4)
    ]
    admin = {"Authorization": f"Bearer {api_token(client, world['admin'])}"}
    assert client.get("/api/v1/exportjob/", headers=admin).json["result"] == []
    assert client.get(f"/api/v1/exportjob/{job_id}", headers=admin).status_code == 404

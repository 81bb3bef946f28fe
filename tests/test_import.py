"""Lead import: every bad row reported by number, valid-only or nothing, never half-imported."""

from __future__ import annotations

import csv
import io

import pytest

from app.extensions import db
from app.leads.models import Lead
from tests.support import count, make_branch, make_lead, make_staff

HEADER = ["first_name", "last_name", "email", "phone", "company"]


def _csv(rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode()


def thousand_rows_csv() -> bytes:
    """The issue's file: 1,000 rows (spreadsheet rows 2..1001), 3 bad and 2 duplicates.

    Each bad row is a first, faulty attempt at a person typed again correctly in the next row
    (same e-mail or phone): the bad row is refused, the good copy is imported, so a re-import of
    the file finds every one of its 1,000 rows already in the database.
    """
    rows = [
        [f"First{i}", f"Last{i}", f"person{i}@example.com", f"+91 90000 {i:05d}", ""]
        for i in range(1000)
    ]
    rows[9][3], rows[9][2] = "12", rows[10][2]  # row 11: malformed phone; row 12's e-mail
    rows[499][2], rows[499][3] = (
        "not-an-email",
        rows[500][3],
    )  # row 501: bad e-mail; row 502's phone
    rows[998][0], rows[998][2] = "", rows[999][2]  # row 1000: no first name; row 1001's e-mail
    rows[100][2] = "existing@example.com"  # row 102: duplicate of a lead in the database
    rows[200][2], rows[200][3] = "person150@example.com", ""  # row 202: repeats row 152
    return _csv(rows)


BAD_ROWS = {(11, "phone"), (501, "email"), (1000, "first_name")}
DUPLICATE_ROWS = {(102, "email"), (202, "email")}


@pytest.fixture
def thousand_rows(app, tmp_path):
    agent = make_staff("Agent", make_branch())
    make_lead(agent, email="existing@example.com", phone=None)
    db.session.commit()
    path = tmp_path / "leads.csv"
    path.write_bytes(thousand_rows_csv())
    return agent, path


def _run(app, path, username, *extra):
    return app.test_cli_runner().invoke(
        args=["crm", "import-leads", str(path), "--as", username, *extra]
    )


def test_the_report_names_the_five_bad_rows_and_nothing_is_imported(app, thousand_rows):
    agent, path = thousand_rows
    result = _run(app, path, agent.user.username)
    assert result.exit_code == 1
    named = {line.split(": ")[0] for line in result.output.splitlines() if line.startswith("row ")}
    assert named == {f"row {row}" for row, _ in BAD_ROWS | DUPLICATE_ROWS}
    for row, field in BAD_ROWS | DUPLICATE_ROWS:
        assert f"row {row}: {field}:" in result.output
    assert "1000 rows: 995 valid, 3 invalid, 2 duplicates" in result.output
    assert "nothing imported" in result.output
    assert count(Lead) == 1


def test_valid_only_imports_995_and_a_reimport_imports_none(app, thousand_rows):
    agent, path = thousand_rows
    result = _run(app, path, agent.user.username, "--valid-only")
    assert result.exit_code == 0, result.output
    assert "imported 995 leads" in result.output
    assert count(Lead) == 996
    assert {
        lead.source for lead in db.session.query(Lead).filter(Lead.email != "existing@example.com")
    } == {"import"}
    assert {lead.assigned_agent_id for lead in db.session.query(Lead)} == {agent.user_id}

    again = _run(app, path, agent.user.username, "--valid-only")
    assert "imported 0 leads" in again.output
    assert "1000 rows: 0 valid, 0 invalid, 1000 duplicates" in again.output
    # the bad rows are duplicates now, and their own faults are still named
    assert "row 11: phone:" in again.output and "row 1000: first_name:" in again.output
    assert count(Lead) == 996


def test_a_file_with_unknown_columns_is_refused_whole(app, tmp_path):
    agent = make_staff("Agent", make_branch())
    db.session.commit()
    path = tmp_path / "odd.csv"
    path.write_text("first_name,last_name,salary\nA,B,100\n")
    result = _run(app, path, agent.user.username)
    assert result.exit_code != 0 and "unknown column(s) salary" in result.output
    assert count(Lead) == 0


def test_xlsx_files_import_too(app, tmp_path):
    from openpyxl import Workbook

    agent = make_staff("Agent", make_branch())
    db.session.commit()
    book = Workbook()
    sheet = book.active
    sheet.append(["First Name", "Last Name", "Email"])
    sheet.append(["Asha", "Verma", "asha@example.com"])
    path = tmp_path / "leads.xlsx"
    book.save(path)
    result = _run(app, path, agent.user.username)
    assert "imported 1 leads" in result.output
    assert db.session.query(Lead).one().email == "asha@example.com"


def test_a_campaign_column_attributes_the_leads_and_an_unknown_reference_is_named(app, tmp_path):
    from app.campaigns.summary import leads_and_conversions_by_campaign
    from tests.test_campaigns import make_campaign, make_segment

    agent = make_staff("Agent", make_branch())
    campaign = make_campaign(make_segment(), name="Diwali Funds", code="diwali-26")
    campaign_id = campaign.id
    path = tmp_path / "campaign.csv"
    path.write_text(
        "first_name,last_name,email,campaign\n"
        "Ana,One,ana@example.com,DIWALI-26\n"
        "Ben,Two,ben@example.com,\n"
        "Cy,Three,cy@example.com,no-such-code\n"
        "Di,Four,di@example.com,diwali-26\n"
    )
    refused = _run(app, path, agent.user.username)
    assert refused.exit_code == 1
    assert "row 4: campaign: no campaign with the reference 'no-such-code'" in refused.output
    assert count(Lead) == 0

    done = _run(app, path, agent.user.username, "--valid-only")
    assert done.exit_code == 0 and "imported 3 leads" in done.output, done.output
    by_name = {lead.first_name: lead.campaign_id for lead in db.session.query(Lead)}
    assert by_name == {"Ana": campaign_id, "Ben": None, "Di": campaign_id}
    # the attribution summary behind the sales dashboard counts them, written by the import
    assert leads_and_conversions_by_campaign(None, None, None, None) == [(campaign_id, 2, 0)]

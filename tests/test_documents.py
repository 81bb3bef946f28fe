"""Documents as users meet them: refused uploads say why and store nothing, names never become
paths, versions stay readable on disk and on S3, downloads are scoped, audited and final."""

from __future__ import annotations

import hashlib
import html
import io
import re
import urllib.request
import uuid
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.audit.models import AuditLog
from app.clients.models import Client
from app.clients.services import prepare_client
from app.core.errors import FieldError
from app.core.storage import EXTENSION_KEY, get_storage
from app.documents import services
from app.documents.models import Document
from app.extensions import db
from app.security.scoping import Actor
from tests.s3_server import aws_test_credentials, moto_s3_server
from tests.support import api_token, login, make_branch, make_lead, make_staff


def pdf(note: str = "scan") -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
        b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n"
        b"% " + note.encode() + b"\ntrailer <</Root 1 0 R>>\n%%EOF\n"
    )


# A DOS stub whose e_lfanew (offset 0x3C) points at a "PE\0\0" header for i386.
EXE = b"MZ\x90\x00" + b"\x00" * 56 + (64).to_bytes(4, "little") + b"PE\x00\x00\x4c\x01" + bytes(250)


def docx() -> bytes:
    """The two parts that make a ZIP a Word document (what filetype looks for)."""
    ooxml = "http://schemas.openxmlformats.org"
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            f'<Types xmlns="{ooxml}/package/2006/content-types">'
            f'<Override PartName="/word/document.xml" ContentType="{main}"/></Types>',
        )
        archive.writestr(
            "word/document.xml",
            f'<w:document xmlns:w="{ooxml}/wordprocessingml/2006/main"><w:body/></w:document>',
        )
    return buffer.getvalue()


# ---- storage and people ----


@pytest.fixture(scope="session")
def moto_endpoint():
    with moto_s3_server() as endpoint:
        yield endpoint


def use_storage(app, monkeypatch, **settings):
    """Configure the app's storage for this test only (get_storage() caches it per app)."""
    for name, value in settings.items():
        monkeypatch.setitem(app.config, name, value)
    # Remember what was there (or that nothing was) before get_storage() caches the new one.
    monkeypatch.setitem(app.extensions, EXTENSION_KEY, None)
    del app.extensions[EXTENSION_KEY]
    return get_storage()


@pytest.fixture
def storage(request, app, tmp_path, monkeypatch):
    """Local storage under a tmp dir; ``indirect`` "s3" gives a fresh bucket on moto instead."""
    if getattr(request, "param", "local") == "local":
        return use_storage(app, monkeypatch, STORAGE_LOCAL_ROOT=str(tmp_path / "files"))
    endpoint = request.getfixturevalue("moto_endpoint")
    aws_test_credentials(monkeypatch)
    bucket = f"docs-{uuid.uuid4().hex[:16]}"
    s3 = use_storage(
        app, monkeypatch, STORAGE_BACKEND="s3", S3_BUCKET=bucket, S3_ENDPOINT_URL=endpoint
    )
    s3.ensure_bucket()
    return s3


def add_client(agent, name: str) -> Client:
    client = prepare_client(
        Client(name=name, branch_id=agent.branch_id, relationship_manager_id=agent.user_id)
    )
    db.session.add(client)
    db.session.flush()
    return client


def seed(agent, kind: str, record, name: str) -> int:
    """A document uploaded by ``agent`` without going through HTTP."""
    actor = Actor(agent.user_id, frozenset({"Agent"}), agent.branch_id, agent.user.username)
    owner = services.Owner(kind, record)
    document = services.upload_document(owner, "pan_card", name, pdf(name), actor=actor)
    db.session.flush()
    return document.id


@pytest.fixture
def desk(app, storage):
    branch = make_branch()
    agent, other = make_staff("Agent", branch), make_staff("Agent", branch)
    reviewer = make_staff("Compliance", branch)
    owner = add_client(agent, "Asha Traders")
    db.session.commit()
    names = dict(zip(("user", "other", "reviewer"), (agent, other, reviewer), strict=True))
    people = {key: profile.user.username for key, profile in names.items()}
    return SimpleNamespace(**people, client_id=owner.id, storage=storage)


def bearer(client, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(client, username)}"}


def api_upload(http, auth, data: bytes, name: str, doc_type: str = "pan_card", **owner):
    form = {"file": (io.BytesIO(data), name), "doc_type": doc_type, **owner}
    return http.post("/api/v1/document/upload", data=form, headers=auth)


def uploaded(http, auth, desk, data: bytes | None = None) -> int:
    response = api_upload(http, auth, data or pdf(), "pan.pdf", client_id=str(desk.client_id))
    assert response.status_code == 201, response.json
    return response.json["id"]


def screen_upload(http, data: bytes, name: str, doc_type: str = "pan_card", **owner):
    form = {"file": (io.BytesIO(data), name), "doc_type": doc_type, **owner}
    return http.post("/documentview/upload", data=form, content_type="multipart/form-data")


def field_errors(page: str) -> list[str]:
    return [html.unescape(e) for e in re.findall(r'field-error">(.*?)</div>', page)]


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def download_rows(document_id: int, **who) -> int:
    """Download rows for one document (audit_log outlives a test; SQLite reuses ids)."""
    rows = db.session.query(AuditLog).filter_by(action="download", record_type="document")
    return rows.filter_by(record_id=str(document_id), **who).count()


# ---- 1. refused uploads ----

REFUSALS = {
    "exe renamed pdf": ("statement.pdf", EXE, "bank_statement", "file", "a bank statement must be"),
    "empty file": ("pan.pdf", b"", "pan_card", "file", "is empty (0 bytes)"),
    "oversize file": ("pan.pdf", pdf("x" * 2000), "pan_card", "file", "the limit is 1,000 bytes"),
    "docx as pan card": ("pan.docx", docx(), "pan_card", "file", "is a Word (DOCX) file; a pan"),
    "unknown doc type": ("pan.pdf", pdf(), "tax_return", "doc_type", "must be one of: pan_card"),
}


def test_the_docx_fixture_is_recognised_as_word():
    assert services.sniff_format(docx()) == services.DOCX
    assert services.sniff_format(EXE) not in services.ALLOWED_FORMATS["other"]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_upload_names_the_problem_and_stores_nothing(app, client, desk, case, monkeypatch):
    name, data, doc_type, field, message = REFUSALS[case]
    monkeypatch.setitem(app.config, "CRM_MAX_UPLOAD_BYTES", 1000)

    auth = bearer(client, desk.user)
    response = api_upload(client, auth, data, name, doc_type, client_id=str(desk.client_id))
    assert response.status_code == 422
    assert any(message in text for text in response.json["message"][field])

    login(client, desk.user)
    page = screen_upload(client, data, name, doc_type, client=str(desk.client_id))
    assert page.status_code == 200  # the form again, not a redirect to a new document
    screen_message = "Not a valid choice" if field == "doc_type" else message
    assert any(screen_message in error for error in field_errors(page.get_data(as_text=True)))

    assert db.session.query(Document).count() == 0
    assert stored_files(desk.storage.root) == []


def test_an_upload_with_no_signed_in_uploader_is_refused_before_storing(desk):
    owner = services.Owner("client", db.session.get(Client, desk.client_id))
    with pytest.raises(FieldError, match="signed-in member of staff"):
        services.upload_document(owner, "pan_card", "pan.pdf", pdf())  # no request, no actor
    assert stored_files(desk.storage.root) == []


# ---- 2. a hostile file name ----


def test_a_path_as_file_name_is_kept_as_a_name_and_never_used_as_a_path(client, desk, tmp_path):
    response = api_upload(
        client, bearer(client, desk.user), pdf(), "../../etc/passwd", client_id=str(desk.client_id)
    )
    assert response.status_code == 201
    assert response.json["result"]["original_name"] == "../../etc/passwd"
    document = db.session.get(Document, response.json["id"])
    assert document.original_name == "../../etc/passwd"
    assert ".." not in document.storage_key
    assert document.storage_key.startswith(f"documents/client/{desk.client_id}/pan_card/v1-")
    root = desk.storage.root
    assert stored_files(root) == [root / document.storage_key]
    assert [p for p in tmp_path.rglob("*") if p.is_file() and root not in p.parents] == []

    login(client, desk.user)
    page = client.get(f"/documentview/show/{document.id}").get_data(as_text=True)
    assert ">../../etc/passwd<" in page

    tag = "<img src=x onerror=alert(1)>.pdf"  # no '"': the test client does not escape it
    shown = screen_upload(client, pdf(), tag, "address_proof", client=str(desk.client_id))
    assert shown.status_code == 302
    page = client.get(shown.headers["Location"]).get_data(as_text=True)
    assert html.escape(tag) in page
    assert tag not in page


# ---- 3. versions on local disk and on S3 ----


@pytest.mark.parametrize("storage", ["local", "s3"], indirect=True)
def test_versions_are_stored_whole_and_each_stays_downloadable(client, desk):
    auth = bearer(client, desk.user)
    first, second = pdf("first version"), pdf("second, corrected version")
    ids = [uploaded(client, auth, desk, data) for data in (first, second)]

    for number, (document_id, data) in enumerate(zip(ids, (first, second), strict=True), 1):
        document = db.session.get(Document, document_id)
        assert document.version == number
        assert document.content_type == "application/pdf"
        assert document.size_bytes == len(data)
        assert document.sha256 == hashlib.sha256(data).hexdigest()
        assert document.storage_backend == desk.storage.name
        assert desk.storage.get(document.storage_key) == data

    login(client, desk.user)
    for response, data in (
        (client.get(f"/documentview/file/{ids[0]}"), first),
        (client.get(f"/api/v1/document/{ids[1]}/download", headers=auth), second),
    ):
        if desk.storage.name == "s3":
            assert response.status_code == 302
            with urllib.request.urlopen(response.headers["Location"], timeout=10) as presigned:
                assert presigned.read() == data
                assert presigned.headers["Content-Type"] == "application/pdf"
        else:
            assert response.status_code == 200
            assert response.data == data
            assert response.headers["Content-Type"] == "application/pdf"
            assert response.headers["Content-Disposition"].startswith("attachment;")
            assert response.headers["X-Content-Type-Options"] == "nosniff"


# ---- 4. row scoping (PostgreSQL) ----


@pytest.fixture
def branches(pg_app, tmp_path, monkeypatch):
    use_storage(pg_app, monkeypatch, STORAGE_LOCAL_ROOT=str(tmp_path / "files"))
    mumbai, sydney = make_branch("MUM"), make_branch("SYD", tz="Australia/Sydney")
    a, b, manager = (make_staff(role, mumbai) for role in ("Agent", "Agent", "Manager"))
    syd = make_staff("Agent", sydney)
    docs = {
        "a": seed(a, "client", add_client(a, "Asha Traders"), "asha.pdf"),
        "b": seed(b, "lead", make_lead(b), "bharat-lead.pdf"),
        "syd": seed(syd, "client", add_client(syd, "Sydney Pty"), "sydney.pdf"),
    }
    db.session.commit()
    return SimpleNamespace(agent=a.user.username, manager=manager.user.username, docs=docs)


def api_document_ids(client, auth) -> set[int]:
    response = client.get("/api/v1/document/?q=(page_size:100)", headers=auth)
    assert response.status_code == 200
    return {row["id"] for row in response.json["result"]}


def test_agent_reaches_only_documents_of_their_own_clients_and_leads(pg_client, branches):
    docs = branches.docs
    auth = bearer(pg_client, branches.agent)
    login(pg_client, branches.agent)

    assert api_document_ids(pg_client, auth) == {docs["a"]}
    page = pg_client.get("/documentview/list/").get_data(as_text=True)
    assert "asha.pdf" in page
    assert "bharat-lead.pdf" not in page and "sydney.pdf" not in page
    assert pg_client.get(f"/documentview/file/{docs['a']}").data == pdf("asha.pdf")
    assert pg_client.get(f"/api/v1/document/{docs['a']}/download", headers=auth).status_code == 200
    for guessed in (docs["b"], docs["syd"]):
        assert pg_client.get(f"/documentview/file/{guessed}").status_code == 404
        assert pg_client.get(f"/documentview/show/{guessed}").status_code == 404
        assert pg_client.get(f"/api/v1/document/{guessed}", headers=auth).status_code == 404
        response = pg_client.get(f"/api/v1/document/{guessed}/download", headers=auth)
        assert response.status_code == 404
        assert b"%PDF" not in response.data


def test_manager_reaches_the_documents_of_their_branch_only(pg_client, branches):
    docs = branches.docs
    auth = bearer(pg_client, branches.manager)

    assert api_document_ids(pg_client, auth) == {docs["a"], docs["b"]}
    response = pg_client.get(f"/api/v1/document/{docs['b']}/download", headers=auth)
    assert response.data == pdf("bharat-lead.pdf")
    refused = pg_client.get(f"/api/v1/document/{docs['syd']}/download", headers=auth)
    assert refused.status_code == 404


# ---- 5. downloads are audited ----


def test_each_download_is_audited_with_who_and_what_and_refusals_are_not(app, client, desk):
    auth = bearer(client, desk.user)
    document_id = uploaded(client, auth, desk)
    login(client, desk.user)

    assert client.get(f"/api/v1/document/{document_id}/download", headers=auth).status_code == 200
    assert download_rows(document_id, actor_name=desk.user) == 1
    assert client.get(f"/documentview/file/{document_id}").status_code == 200
    assert download_rows(document_id, actor_name=desk.user) == 2
    rows = db.session.query(AuditLog).filter_by(action="download", actor_name=desk.user).all()
    assert {(r.record_type, r.record_id, r.detail) for r in rows} == {
        ("document", str(document_id), "pan_card v1")
    }

    before = download_rows(document_id)
    outsider = app.test_client()
    login(outsider, desk.other)
    assert outsider.get(f"/documentview/file/{document_id}").status_code == 404
    response = outsider.get(
        f"/api/v1/document/{document_id}/download", headers=bearer(outsider, desk.other)
    )
    assert response.status_code == 404
    assert download_rows(document_id, actor_name=desk.other) == 0
    assert download_rows(document_id) == before

    compliance = app.test_client()
    login(compliance, desk.reviewer)  # may read the audit log: offered the document's history
    page = compliance.get(f"/documentview/show/{document_id}").get_data(as_text=True)
    assert f"/auditlogview/record/document/{document_id}" in page


# ---- 6. documents are final ----


def test_documents_cannot_be_edited_or_deleted_on_screen_or_api(client, desk):
    auth = bearer(client, desk.user)
    document_id = uploaded(client, auth, desk)
    login(client, desk.user)
    forged = {"original_name": "evil.html", "content_type": "text/html", "sha256": "0" * 64}

    assert client.get(f"/documentview/edit/{document_id}").status_code == 405
    assert client.post(f"/documentview/edit/{document_id}", data=forged).status_code == 405
    deleted = client.post(f"/documentview/delete/{document_id}")
    assert deleted.status_code == 405
    assert "older versions stay readable" in deleted.get_data(as_text=True)
    made_up = {**forged, "doc_type": "pan_card", "storage_key": "documents/x.pdf", "version": 9}
    for method, url, body in (
        ("PUT", f"/api/v1/document/{document_id}", forged),
        ("DELETE", f"/api/v1/document/{document_id}", None),
        ("POST", "/api/v1/document/", made_up),  # a row without an upload behind it
    ):
        response = client.open(url, method=method, json=body, headers=auth)
        assert response.status_code in (403, 405), (method, response.status_code)

    db.session.expire_all()
    (document,) = db.session.query(Document).all()
    assert document.id == document_id
    assert (document.original_name, document.content_type) == ("pan.pdf", "application/pdf")
    assert client.get(f"/documentview/file/{document_id}").data == pdf()


def test_storage_that_cannot_be_reached_answers_503_and_writes_nothing(
    app, client, desk, monkeypatch
):
    use_storage(
        app,
        monkeypatch,
        STORAGE_BACKEND="s3",
        S3_BUCKET="nowhere",
        S3_ENDPOINT_URL="http://127.0.0.1:1",
    )
    auth = bearer(client, desk.user)
    response = api_upload(client, auth, pdf(), "pan.pdf", client_id=str(desk.client_id))
    assert response.status_code == 503
    assert "could not be stored" in response.json["message"]
    assert db.session.query(Document).count() == 0


def test_a_document_on_a_backend_no_longer_configured_is_a_clear_503(
    app, client, desk, monkeypatch
):
    document_id = uploaded(client, bearer(client, desk.user), desk)
    use_storage(
        app,
        monkeypatch,
        STORAGE_BACKEND="s3",
        S3_BUCKET="other",
        S3_ENDPOINT_URL="http://127.0.0.1:1",
    )
    response = client.get(
        f"/api/v1/document/{document_id}/download", headers=bearer(client, desk.user)
    )
    assert response.status_code == 503
    assert "kept on the local storage" in response.json["message"]

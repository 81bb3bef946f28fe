"""API errors are JSON naming the field and the reason; a duplicate or another broken database
constraint answers 409/422 (never 500), writes nothing and is audited as a refusal."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.billing.models import BillingProduct
from app.extensions import db
from app.org.models import Branch
from tests.support import api_token, count, make_branch, make_lead, make_staff


def _admin(http) -> dict[str, str]:
    make_staff("Admin", make_branch(), "errors_admin")
    db.session.commit()
    return {"Authorization": f"Bearer {api_token(http, 'errors_admin')}"}


def _rejections() -> list[AuditLog]:
    return list(
        db.session.scalars(
            select(AuditLog).where(AuditLog.action == "rejected").order_by(AuditLog.seq)
        )
    )


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_duplicate_is_refused_naming_the_field(engine, request):
    http = request.getfixturevalue("client" if engine == "sqlite" else "pg_client")
    headers = _admin(http)
    cases = [
        ("branch", {"code": "DUPE", "name": "First", "timezone": "UTC"}, "code", Branch),
        (
            "billingproduct",
            {
                "sku": "SKU-1",
                "name": "Advice",
                "kind": "service",
                "unit_price": "10.00",
                "tax_rate": "18",
            },
            "sku",
            BillingProduct,
        ),
    ]
    for resource, body, field, model in cases:
        first = http.post(f"/api/v1/{resource}/", json=body, headers=headers)
        assert first.status_code == 201, (resource, first.json)
        before = count(model)
        seen = len(_rejections())
        again = http.post(f"/api/v1/{resource}/", json={**body, "name": "Second"}, headers=headers)
        assert again.status_code in (409, 422), (resource, again.status_code, again.json)
        assert field in again.json["message"], again.json
        reason = again.json["message"][field][0]
        assert "already" in reason and "constraint" not in reason.lower(), reason
        assert count(model) == before
        assert len(_rejections()) > seen


def test_an_edit_that_breaks_a_unique_rule_is_a_409_naming_the_field(pg_client, pg_app):
    headers = _admin(pg_client)
    one = pg_client.post(
        "/api/v1/branch/", json={"code": "ONE", "name": "One", "timezone": "UTC"}, headers=headers
    )
    two = pg_client.post(
        "/api/v1/branch/", json={"code": "TWO", "name": "Two", "timezone": "UTC"}, headers=headers
    )
    assert one.status_code == two.status_code == 201
    clash = pg_client.put(f"/api/v1/branch/{two.json['id']}", json={"code": "ONE"}, headers=headers)
    assert clash.status_code in (409, 422), clash.json
    assert "code" in clash.json["message"]
    assert "psycopg2" not in str(clash.json) and "Database exception" not in str(clash.json)
    assert db.session.get(Branch, two.json["id"]).code == "TWO"


def test_deleting_a_record_others_refer_to_is_a_409(pg_client, pg_app):
    headers = _admin(pg_client)
    branch = make_branch("INUSE")
    make_staff("Agent", branch)
    db.session.commit()
    refused = pg_client.delete(f"/api/v1/branch/{branch.id}", headers=headers)
    assert refused.status_code == 409, refused.json
    assert "refer to it" in refused.json["message"]
    assert db.session.get(Branch, branch.id) is not None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "No code", "timezone": "UTC"}, "code"),
        ({"code": "X" * 500, "name": "Long", "timezone": "UTC"}, "code"),
        ({"code": "OK1", "name": "Unknown field", "timezone": "UTC", "colour": "red"}, "colour"),
    ],
)
def test_bad_input_names_the_field(client, app, body, field):
    headers = _admin(client)
    answer = client.post("/api/v1/branch/", json=body, headers=headers)
    assert answer.status_code in (400, 422), answer.json
    assert field in answer.json["message"], answer.json
    assert count(Branch) == 1  # the admin's own branch only


def test_a_workflow_sent_a_json_array_instead_of_an_object_names_the_field(client, app):
    """A body that is JSON but not an object (``[1]``) is read as empty: the workflow names the
    field it lacks (it used to call ``.get`` on the list and answer 500)."""
    headers = _admin(client)
    branch = make_branch("ARR")
    agent = make_staff("Agent", branch)
    lead = make_lead(agent, first_name="Arrayed")
    db.session.commit()
    before = count(type(lead))
    merged = client.post(f"/api/v1/lead/{lead.id}/merge", json=[1], headers=headers)
    assert merged.status_code == 422, merged.json
    assert "other_id" in str(merged.json["message"]) or merged.json.get("field") == "other_id"
    trade = client.post("/api/v1/trade/", json=[{"quantity": "1"}], headers=headers)
    assert 400 <= trade.status_code < 500, trade.json
    assert count(type(lead)) == before

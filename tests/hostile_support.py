"""Helpers for the hostile-input tests: bearer headers, raw JSON bodies and audit-log reads."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.extensions import db
from tests.support import api_token


def bearer(http, staff) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(http, staff.user.username)}"}


def raw_json(http, method: str, url: str, body: str, headers: dict[str, str]):
    """Send ``body`` exactly as written: JSON literals such as ``NaN``, ``Infinity`` and
    ``1e309`` that a JSON encoder would never produce."""
    return http.open(
        url,
        method=method,
        data=body.encode("utf-8"),
        headers={**headers, "Content-Type": "application/json"},
    )


def with_value(body: dict, field: str, literal: str) -> str:
    """``body`` as JSON with ``field`` set to the raw ``literal`` (``NaN``, ``-1``, ``"x"``)."""
    placeholder = "__LITERAL__"
    return json.dumps({**body, field: placeholder}).replace(f'"{placeholder}"', literal)


def audit_mark() -> int:
    return db.session.scalar(select(func.coalesce(func.max(AuditLog.seq), 0)))


def audited_since(mark: int, *actions: str) -> list[AuditLog]:
    db.session.expire_all()
    query = select(AuditLog).where(AuditLog.seq > mark).order_by(AuditLog.seq)
    if actions:
        query = query.where(AuditLog.action.in_(actions))
    return list(db.session.scalars(query))


def assert_refusal_audited(mark: int, record_type: str | None, field: str | None = None):
    """A refusal (``rejected``) recorded since ``mark`` for ``record_type`` naming ``field``
    (as a service names it, "First name: ...", or as the API schema does, "first_name")."""
    rows = [
        row
        for row in audited_since(mark, "rejected")
        if record_type is None or row.record_type == record_type
    ]
    assert rows, f"no refusal of {record_type} was audited"
    if field is not None:
        names = (field, field.replace("_", " ").capitalize())
        assert any(any(n in (row.detail or "") for n in names) for row in rows), [
            row.detail for row in rows
        ]
    return rows[-1]

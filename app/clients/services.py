"""Rules for clients: contact data, identifiers (checked with python-stdnum), who may see them."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import inspect, select
from stdnum.au import tfn as au_tfn
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.in_ import aadhaar as in_aadhaar
from stdnum.in_ import pan as in_pan

from app.clients.models import CLIENT_STATUSES, CLIENT_TYPES, KYC_STATUSES, Client
from app.core.crypto import lookup_hash
from app.core.errors import FieldError, NotFound, PermissionDenied
from app.core.unit_of_work import without_autoflush
from app.core.validators import clean_text, normalise_email, normalise_phone
from app.extensions import db
from app.org.models import Branch, StaffProfile
from app.security.scoping import UNSCOPED, Actor, current_actor

# field -> (stdnum module, look-up hash column, label)
IDENTIFIERS = {
    "pan": (in_pan, "pan_hash", "PAN"),
    "aadhaar": (in_aadhaar, "aadhaar_hash", "Aadhaar number"),
    "tax_file_number": (au_tfn, "tfn_hash", "tax file number"),
}
REVEAL_ROLES = frozenset({"Admin", "Compliance"})


def check_identifier(field: str, value: Any) -> str | None:
    """The compact, validated form of an identifier, or None when empty."""
    module, _, label = IDENTIFIERS[field]
    text = clean_text(value, field, 40)
    if text is None:
        return None
    try:
        return module.validate(text)
    except StdnumError as exc:
        raise FieldError(f"is not a valid {label}: {exc}", field) from exc


def _keep_unchanged_when_blank(client: Client, field: str) -> None:
    """Identifier inputs on the edit form start blank (never showing the value): blank = keep."""
    state = inspect(client)
    if state.persistent and not getattr(client, field):
        history = state.attrs[field].history
        if history.deleted and history.deleted[0]:
            setattr(client, field, history.deleted[0])


@without_autoflush
def prepare_client(client: Client, actor: Actor | None = None) -> Client:
    actor = actor if actor is not None else current_actor()
    client.name = clean_text(client.name, "name", 200, required=True)
    client.legal_name = clean_text(client.legal_name, "legal_name", 200)
    client.registration_number = clean_text(client.registration_number, "registration_number", 50)
    client.address = clean_text(client.address, "address", 2000)
    client.email = normalise_email(client.email)
    client.phone = normalise_phone(client.phone, current_app.config["CRM_DEFAULT_PHONE_REGION"])
    for field, choices in (
        ("client_type", CLIENT_TYPES),
        ("status", CLIENT_STATUSES),
        ("kyc_status", KYC_STATUSES),
    ):
        value = getattr(client, field) or choices[0]
        if value not in choices:
            raise FieldError(f"must be one of: {', '.join(choices)}.", field)
        setattr(client, field, value)
    for field, (_, hash_column, _) in IDENTIFIERS.items():
        _keep_unchanged_when_blank(client, field)
        value = check_identifier(field, getattr(client, field))
        setattr(client, field, value)
        setattr(client, hash_column, lookup_hash(field, value))
    _place(client, actor)
    return client


def _place(client: Client, actor: Actor | None) -> None:
    if client.branch is not None:
        client.branch_id = client.branch.id
    if client.relationship_manager is not None:
        client.relationship_manager_id = client.relationship_manager.id
    if actor is not None and actor.user_id is not None and not actor.sees_everything:
        if "Manager" not in actor.roles:
            client.relationship_manager_id = client.relationship_manager_id or actor.user_id
        client.branch_id = actor.branch_id
    if client.branch_id is None and client.relationship_manager_id is not None:
        client.branch_id = db.session.execute(
            select(StaffProfile.branch_id).where(
                StaffProfile.user_id == client.relationship_manager_id
            ),
            execution_options=UNSCOPED,
        ).scalar_one_or_none()
    if client.branch_id is None:
        raise FieldError("a client belongs to a branch.", "branch")
    # Set the relationships too: a blank drop-down left them None, which would win at flush.
    client.branch = db.session.get(Branch, client.branch_id)
    if client.branch is None:
        raise FieldError("no such branch.", "branch")
    client.relationship_manager = (
        db.session.get(User, client.relationship_manager_id)
        if client.relationship_manager_id
        else None
    )


def find_clients_by_identifier(field: str, value: str) -> list[Client]:
    """Exact look-up of an encrypted identifier through its keyed hash (no decryption)."""
    _, hash_column, _ = IDENTIFIERS[field]
    digest = lookup_hash(field, check_identifier(field, value))
    return list(db.session.scalars(select(Client).where(getattr(Client, hash_column) == digest)))


def reveal_identifier(client_id: int, field: str, actor: Actor | None = None) -> str:
    """The full value of an identifier, for Compliance and Admin only; audited."""
    from app.core.audit import record_event

    actor = actor if actor is not None else current_actor()
    if field not in IDENTIFIERS:
        raise FieldError(f"must be one of: {', '.join(IDENTIFIERS)}.", "field")
    if actor is None or not (actor.roles & REVEAL_ROLES):
        raise PermissionDenied("only Compliance and Admin may reveal identifiers.", field)
    client = db.session.scalar(select(Client).where(Client.id == client_id))
    if client is None:
        raise NotFound("no such client.")
    record_event("reveal", record=client, detail=f"revealed {field}")
    return getattr(client, field) or ""

"""Rules for clients: contact data, identifiers (checked with python-stdnum), who may see them."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import inspect, select
from stdnum.au import abn as au_abn
from stdnum.au import acn as au_acn
from stdnum.au import tfn as au_tfn
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.in_ import aadhaar as in_aadhaar
from stdnum.in_ import pan as in_pan

from app.clients.models import (
    CLIENT_CHANNELS,
    CLIENT_STATUSES,
    CLIENT_TYPES,
    CONTACT_KINDS,
    KYC_STATUSES,
    SEGMENT_BY_CAPACITY,
    Client,
    ClientContact,
    ClientDirector,
)
from app.core.crypto import lookup_hash
from app.core.errors import FieldError, NotFound, PermissionDenied
from app.core.unit_of_work import without_autoflush
from app.core.validators import clean_name, clean_text, normalise_email, normalise_phone
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
# Business numbers: not secret (they are on public registers), stored in their compact form.
BUSINESS_NUMBERS = {"abn": (au_abn, "ABN"), "acn": (au_acn, "ACN")}


def check_identifier(field: str, value: Any) -> str | None:
    """The compact, validated form of an identifier, or None when empty."""
    module, _, label = IDENTIFIERS[field]
    return _validated(module, label, field, value, 40)


def _validated(module: Any, label: str, field: str, value: Any, limit: int) -> str | None:
    """``value`` checked by a python-stdnum module, in its compact form; None when empty."""
    text = clean_text(value, field, limit)
    if text is None:
        return None
    try:
        return module.validate(text)
    except StdnumError as exc:
        raise FieldError(f"is not a valid {label}: {exc}", field) from exc


def check_business_number(field: str, value: Any) -> str | None:
    """A valid ABN or ACN in compact form (digits only), or None when empty."""
    module, label = BUSINESS_NUMBERS[field]
    return _validated(module, label, field, value, 20)


def segment_for(investment_capacity: str | None) -> str | None:
    """The client segment an investment capacity band puts a client in (DOMAIN section 3)."""
    if investment_capacity in (None, ""):
        return None
    if investment_capacity not in SEGMENT_BY_CAPACITY:
        raise FieldError(
            f"must be one of: {', '.join(SEGMENT_BY_CAPACITY)}.", "investment_capacity"
        )
    return SEGMENT_BY_CAPACITY[investment_capacity]


def keep_unchanged_when_blank(client: Client, field: str) -> None:
    """Identifier inputs on the edit form start blank (never showing the value): blank = keep."""
    state = inspect(client)
    if state.persistent and not getattr(client, field):
        history = state.attrs[field].history
        if history.deleted and history.deleted[0]:
            setattr(client, field, history.deleted[0])


@without_autoflush
def prepare_client(client: Client, actor: Actor | None = None) -> Client:
    actor = actor if actor is not None else current_actor()
    client.name = clean_name(client.name, "name", 200, required=True)
    client.legal_name = clean_name(client.legal_name, "legal_name", 200)
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
        keep_unchanged_when_blank(client, field)
        value = check_identifier(field, getattr(client, field))
        setattr(client, field, value)
        setattr(client, hash_column, lookup_hash(field, value))
    for field in BUSINESS_NUMBERS:
        setattr(client, field, check_business_number(field, getattr(client, field)))
    if client.client_type == "company":
        if not client.legal_name:
            raise FieldError("a company client needs its legal name.", "legal_name")
        if not (client.abn or client.acn or client.registration_number):
            raise FieldError(
                "a company client needs an ABN, an ACN or a registration number.", "abn"
            )
    client.investment_capacity = client.investment_capacity or None
    client.segment = segment_for(client.investment_capacity)
    client.preferred_channel = client.preferred_channel or "email"
    if client.preferred_channel not in CLIENT_CHANNELS:
        raise FieldError(f"must be one of: {', '.join(CLIENT_CHANNELS)}.", "preferred_channel")
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


# ---- contacts and directors -----------------------------------------------------------------


def _owning_client(client: Client | None, client_id: int | None) -> Client:
    """The client a contact or director belongs to, as the actor sees it (scoped)."""
    client_id = client.id if client is not None else client_id
    found = db.session.scalar(select(Client).where(Client.id == client_id)) if client_id else None
    if found is None:
        raise FieldError("choose a client you look after.", "client")
    return found


@without_autoflush
def prepare_contact(contact: ClientContact, actor: Actor | None = None) -> ClientContact:
    """Check a contact: its value in the normal form for its kind, one preferred per kind."""
    client = _owning_client(contact.client, contact.client_id)
    contact.client, contact.client_id = client, client.id
    if contact.kind not in CONTACT_KINDS:
        raise FieldError(f"must be one of: {', '.join(CONTACT_KINDS)}.", "kind")
    contact.label = clean_text(contact.label, "label", 60)
    if contact.kind == "email":
        contact.value = normalise_email(contact.value, "value")
    elif contact.kind == "postal_address":
        contact.value = clean_text(contact.value, "value", 500)
    else:
        contact.value = normalise_phone(
            contact.value, current_app.config["CRM_DEFAULT_PHONE_REGION"], "value"
        )
    if not contact.value:
        raise FieldError("is required.", "value")
    same = select(ClientContact.id).where(
        ClientContact.client_id == client.id,
        ClientContact.kind == contact.kind,
        ClientContact.value == contact.value,
    )
    if contact.id is not None:
        same = same.where(ClientContact.id != contact.id)
    if db.session.scalar(same) is not None:
        raise FieldError(f"this client already has the {contact.kind} {contact.value}.", "value")
    contact.preferred = bool(contact.preferred)
    if contact.preferred:
        others = select(ClientContact).where(
            ClientContact.client_id == client.id,
            ClientContact.kind == contact.kind,
            ClientContact.preferred.is_(True),
        )
        for other in db.session.scalars(others):
            if other is not contact:
                other.preferred = False
    return contact


@without_autoflush
def prepare_director(director: ClientDirector, actor: Actor | None = None) -> ClientDirector:
    """Check a director: only companies have them; name required, contact data normalised."""
    client = _owning_client(director.client, director.client_id)
    director.client, director.client_id = client, client.id
    if client.client_type != "company":
        raise FieldError("only a company client has directors.", "client")
    director.full_name = clean_name(director.full_name, "full_name", 200, required=True)
    director.position = clean_text(director.position, "position", 60) or "Director"
    director.email = normalise_email(director.email, "email")
    director.phone = normalise_phone(
        director.phone, current_app.config["CRM_DEFAULT_PHONE_REGION"], "phone"
    )
    return director


# ---- communication preferences --------------------------------------------------------------


def save_client_preferences(
    client_id: int, email: bool, sms: bool, preferred_channel: str
) -> Client:
    """The channels a client allows and the one they prefer (the caller commits). The preferred
    channel must be allowed and the client must have an address on it."""
    from app.comms.models import NotificationPreference

    client = db.session.scalar(select(Client).where(Client.id == client_id))
    if client is None:
        raise NotFound("no such client.")
    if preferred_channel not in CLIENT_CHANNELS:
        raise FieldError(f"must be one of: {', '.join(CLIENT_CHANNELS)}.", "preferred_channel")
    allowed = {"email": email, "sms": sms}
    if not allowed[preferred_channel]:
        raise FieldError(
            f"{preferred_channel} is preferred, so it must be allowed.", "preferred_channel"
        )
    if preferred_channel == "email" and not client.email:
        raise FieldError("the client has no e-mail address.", "preferred_channel")
    if preferred_channel == "sms" and not client.phone:
        raise FieldError("the client has no phone number.", "preferred_channel")
    row = db.session.scalar(
        select(NotificationPreference).where(NotificationPreference.client_id == client.id),
        execution_options=UNSCOPED,
    )
    if row is None:
        row = NotificationPreference(client_id=client.id, in_app_enabled=False)
        db.session.add(row)
    row.email_enabled, row.sms_enabled = bool(email), bool(sms)
    client.preferred_channel = preferred_channel
    return client

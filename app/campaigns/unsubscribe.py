"""Signed unsubscribe links: one per campaign message and recipient, no sign-in needed.

The token is the recipient (client or lead), the campaign and when it was made, signed with
the app's ``SECRET_KEY`` (itsdangerous, its own salt, so no other signed value of the app can
pass for one). A changed or forged token fails the signature; an old one (past
``CRM_UNSUBSCRIBE_MAX_AGE_DAYS``) is refused as expired. Opening the link shows a confirm page;
confirming (or a mail client's one-click POST, RFC 8058) withdraws the person's marketing
consent, audited; every later campaign skips them.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from app.core.audit import record_event
from app.core.errors import DomainError
from app.core.types import utcnow
from app.extensions import db
from app.security.scoping import UNSCOPED

SALT = "fincrm.campaign-unsubscribe"
KINDS = ("client", "lead")


class ForgedLink(DomainError):
    status = 400


class ExpiredLink(DomainError):
    status = 410


@dataclass(frozen=True)
class Unsubscribe:
    campaign_id: int
    kind: str
    person_id: int


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def make_token(campaign_id: int, kind: str, person_id: int) -> str:
    return _serializer().dumps([campaign_id, kind, person_id])


def unsubscribe_url(campaign_id: int, kind: str, person_id: int) -> str:
    base = current_app.config.get("CRM_BASE_URL", "").rstrip("/")
    return f"{base}/unsubscribe/{make_token(campaign_id, kind, person_id)}"


def read_token(token: str) -> Unsubscribe:
    """The link's recipient; ForgedLink (400) or ExpiredLink (410) otherwise."""
    max_age = int(current_app.config.get("CRM_UNSUBSCRIBE_MAX_AGE_DAYS", 365)) * 86400
    try:
        value = _serializer().loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise ExpiredLink(
            "this unsubscribe link has expired; use the link in a more recent message, "
            "or reply to ask us to stop."
        ) from exc
    except BadSignature as exc:
        raise ForgedLink(
            "this unsubscribe link is not valid (it was changed or cut short)."
        ) from exc
    if (
        not isinstance(value, list)
        or len(value) != 3
        or value[1] not in KINDS
        or not all(isinstance(v, int) for v in (value[0], value[2]))
    ):
        raise ForgedLink("this unsubscribe link is not valid.")
    return Unsubscribe(value[0], value[1], value[2])


def _person(link: Unsubscribe):
    from app.clients.models import Client
    from app.leads.models import Lead

    model = Client if link.kind == "client" else Lead
    person = db.session.scalar(
        select(model).where(model.id == link.person_id), execution_options=UNSCOPED
    )
    if person is None:
        raise ForgedLink("this unsubscribe link names nobody we hold.")
    return person


def describe(link: Unsubscribe) -> str:
    """Whom the confirm page addresses, masked (the link may have been forwarded)."""
    person = _person(link)
    if not person.email or "@" not in person.email:
        return "you"
    local, _, domain = person.email.partition("@")
    return f"{local[:1]}***@{domain}"


def confirm_unsubscribe(link: Unsubscribe, how: str) -> bool:
    """Withdraw the person's marketing consent (the caller commits); False when it already
    was. Audited with the campaign the link came from."""
    from app.campaigns.models import Campaign

    person = _person(link)
    campaign = db.session.get(Campaign, link.campaign_id, execution_options=UNSCOPED)
    reference = campaign.code if campaign is not None else f"#{link.campaign_id}"
    if not person.marketing_consent and person.marketing_opt_out_at is not None:
        return False
    person.marketing_consent = False
    person.marketing_opt_out_at = utcnow()
    db.session.flush()
    record_event(
        "update",
        person,
        f"unsubscribed from marketing ({how}) through campaign {reference}",
        actor_name="unsubscribe link",
    )
    return True

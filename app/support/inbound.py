"""E-mail from clients into support cases.

A raw RFC 822 message addressed to ``SUPPORT_INBOUND_ADDRESS`` (fed by ``flask crm
support-ingest FILE`` or posted by the mail gateway to ``POST /api/v1/supportcase/ingest``)
joins the case it answers: the one whose reply it quotes in In-Reply-To or References, or the
one named ``[Case #123]`` in its subject when it comes from that case's client. Otherwise it
opens a new case for the client with the sender's address. A message from an address no client
has, one not addressed to the support address, or one already received, is refused with the
reason and nothing is written.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

from flask import current_app
from sqlalchemy import func, or_, select

from app.clients.models import Client, ClientContact
from app.comms.models import MessageLog
from app.core.errors import ConflictError, FieldError
from app.core.types import utcnow
from app.core.validators import clean_text
from app.extensions import db
from app.security.scoping import UNSCOPED
from app.support import services
from app.support.models import SupportCase, SupportMessage

CASE_TAG = re.compile(r"\[Case #(\d{1,10})\]", re.IGNORECASE)
MESSAGE_IDS = re.compile(r"<[^<>\s]{1,240}>")
MAX_BODY = 50_000


@dataclass(frozen=True)
class Ingested:
    case: SupportCase
    message: SupportMessage
    created: bool
    """A new case was opened (not a reply to an existing one)."""
    how: str
    """How the case was found: ``in-reply-to``, ``subject``, or ``new``."""


def parse_message(raw: bytes) -> EmailMessage:
    limit = int(current_app.config.get("CRM_SUPPORT_MAX_EMAIL_BYTES", 2_000_000))
    if not raw or not raw.strip():
        raise FieldError("is empty: send the raw e-mail (RFC 822).", "message")
    if len(raw) > limit:
        raise FieldError(f"is too large ({len(raw):,} bytes; at most {limit:,}).", "message")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not message.get("From"):
        raise FieldError("has no From header: this is not an e-mail.", "message")
    return message


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, UnicodeError):
        text = part.get_payload(decode=True).decode("utf-8", errors="replace")
    if part.get_content_subtype() == "html":
        text = re.sub(r"<[^>]+>", " ", text)
    return text.replace("\r\n", "\n").replace("\x00", "").strip()


def _recipients(message: EmailMessage) -> set[str]:
    headers = []
    for name in ("To", "Cc", "Delivered-To", "X-Original-To"):
        headers.extend(str(value) for value in message.get_all(name, []))
    return {address.lower() for _, address in getaddresses(headers) if address}


def _clients_with_address(address: str) -> list[Client]:
    """Every client whose e-mail (or an e-mail contact) is ``address``, across branches: mail
    arrives for the whole company."""
    contact = select(ClientContact.client_id).where(
        ClientContact.kind == "email", func.lower(ClientContact.value) == address
    )
    return list(
        db.session.scalars(
            select(Client)
            .where(or_(func.lower(Client.email) == address, Client.id.in_(contact)))
            .order_by(Client.id),
            execution_options=UNSCOPED,
        )
    )


def _client_has_address(client: Client, address: str) -> bool:
    return any(c.id == client.id for c in _clients_with_address(address))


def _case_answered(message: EmailMessage) -> SupportCase | None:
    """The case one of our messages quoted in In-Reply-To or References belongs to."""
    quoted = MESSAGE_IDS.findall(
        " ".join(str(message.get(name, "")) for name in ("In-Reply-To", "References"))
    )
    if not quoted:
        return None
    return db.session.scalar(
        select(SupportCase)
        .join(SupportMessage, SupportMessage.case_id == SupportCase.id)
        .where(SupportMessage.message_id.in_(quoted))
        .order_by(SupportMessage.id.desc())
        .limit(1),
        execution_options=UNSCOPED,
    )


def _case_named(subject: str, sender: str) -> SupportCase | None:
    """The case ``[Case #123]`` names, if the sender is that case's client (a number alone
    must not let anyone write into someone else's case)."""
    tag = CASE_TAG.search(subject)
    if not tag:
        return None
    case = db.session.scalar(
        select(SupportCase).where(SupportCase.id == int(tag.group(1))),
        execution_options=UNSCOPED,
    )
    if case is None or not _client_has_address(case.client, sender):
        return None
    return case


def ingest_email(raw: bytes) -> Ingested:
    """File one e-mail into its case (or a new one); flushes, the caller commits. Refusals
    (``FieldError``/``ConflictError``) write nothing."""
    message = parse_message(raw)
    sender = parseaddr(str(message.get("From", "")))[1].strip().lower()
    if "@" not in sender:
        raise FieldError(f"has no usable sender address ({message.get('From')!s:.80}).", "from")
    inbox = (current_app.config.get("SUPPORT_INBOUND_ADDRESS") or "").strip().lower()
    if inbox and inbox not in _recipients(message):
        raise FieldError(f"is not addressed to the support address {inbox}.", "to")
    message_id = (str(message.get("Message-ID", "")).strip() or None) if message else None
    if message_id and len(message_id) > 250:
        raise FieldError("has a Message-ID longer than 250 characters.", "message_id")
    if message_id:
        known = db.session.scalar(
            select(SupportMessage.case_id).where(SupportMessage.message_id == message_id),
            execution_options=UNSCOPED,
        )
        if known is not None:
            raise ConflictError(
                f"this e-mail ({message_id}) was already filed in case #{known}.", "message_id"
            )
    subject = (
        clean_text(str(message.get("Subject", "")).replace("\n", " ")[:200], "subject", 200)
        or "(no subject)"
    )
    body = _text_of(message)[:MAX_BODY] or "(no text)"

    how = "in-reply-to"
    case = _case_answered(message)
    if case is None:
        how = "subject"
        case = _case_named(subject, sender)
    follow_up_of = None
    if case is not None and case.status == "closed":
        follow_up_of, case = case, None  # a closed case stays closed: the client starts anew
    now = utcnow()
    created = case is None
    if created:
        how = "new"
        if follow_up_of is not None:
            client = follow_up_of.client
        else:
            matches = _clients_with_address(sender)
            if not matches:
                raise FieldError(
                    f"no client has the address {sender}; the e-mail was not filed "
                    "(add the address to the client, then send it again).",
                    "from",
                )
            if len(matches) > 1:
                raise ConflictError(
                    f"{len(matches)} clients have the address {sender} (#"
                    + ", #".join(str(c.id) for c in matches)
                    + "); the e-mail was not filed.",
                    "from",
                )
            client = matches[0]
        case = SupportCase(
            client=client,
            client_id=client.id,
            channel="email",
            subject=CASE_TAG.sub("", subject).strip() or subject,
            description=(f"Follow-up of closed case #{follow_up_of.id}." if follow_up_of else None),
            priority="normal",
        )
        services.prepare_case(case, actor=None)
        db.session.add(case)
    elif case.status in ("waiting", "resolved"):
        services._move(case, "open", now)  # the client answered: it is the desk's turn again
    entry = SupportMessage(
        case=case,
        direction="inbound",
        channel="email",
        sender=sender,
        recipient=inbox or None,
        subject=subject,
        body=body,
        message_id=message_id,
        occurred_at=now,
    )
    db.session.add(entry)
    db.session.flush()
    db.session.add(
        MessageLog(
            direction="inbound",
            channel="email",
            sender=sender,
            recipient=inbox or "support",
            subject=subject,
            body=body,
            occurred_at=now,
            status="delivered",
            related_type=SupportCase.__tablename__,
            related_id=str(case.id),
        )
    )
    db.session.flush()
    return Ingested(case, entry, created, how)

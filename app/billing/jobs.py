"""The billing desk's daily jobs (dates are UTC days).

``mark_overdue`` sets ``overdue`` on every issued or partly paid invoice whose due date has
passed (one UPDATE), expires draft and sent quotations past their validity (one UPDATE), and
reminds the client of each overdue invoice (``invoice_overdue``) and tells their relationship
manager (``invoice_overdue_rm``), once per invoice whatever the number of runs.

``send_contract_renewals`` tells the relationship manager of the client and the contract's
creator (``contract_renewal``) when an active contract's renewal date is
``CRM_CONTRACT_RENEWAL_DAYS`` (60 and 30) days away, once per contract, threshold and renewal
date. A run that was missed for a few days still sends a threshold up to ``CATCH_UP_DAYS``
after its day; when a run finds a contract past both thresholds, only the nearer is sent.

Candidates are found with one query per rule and events already in the outbox are skipped with
one query per 500 keys (``already_notified``), so a re-run sends nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.billing.models import Contract, Invoice, Quotation
from app.clients.models import Client
from app.comms.services import already_notified
from app.core.types import utcnow
from app.extensions import db
from app.security.scoping import UNSCOPED

log = logging.getLogger(__name__)

CATCH_UP_DAYS = 3
"""How many days after its day a missed renewal reminder is still sent."""


@dataclass(frozen=True)
class Notice:
    kind: str
    key: str
    subject: str
    body: str
    user_id: int | None = None
    client_id: int | None = None
    link: str | None = None


def invoice_link(invoice_id: int) -> str:
    return f"/invoiceview/show/{invoice_id}"


def contract_link(contract_id: int) -> str:
    return f"/contractview/show/{contract_id}"


def _money(amount) -> str:
    return f"{current_app.config.get('CRM_BASE_CURRENCY', 'INR')} {amount:,.2f}"


def _send(notices: list[Notice]) -> int:
    from app.comms.services import notify

    done = already_notified(notice.key for notice in notices)
    sent = 0
    for notice in notices:
        if notice.key in done:
            continue
        done.add(notice.key)
        if notify(
            notice.kind,
            notice.key,
            notice.subject,
            notice.body,
            user_id=notice.user_id,
            client_id=notice.client_id,
            link=notice.link,
        ):
            sent += 1
    return sent


def _committed(work) -> dict[str, int]:
    try:
        result = work()
        db.session.commit()
    except IntegrityError:
        # Another run queued some of the same events first: theirs stand; queue the rest.
        db.session.rollback()
        log.info("billing reminders: another run got there first; queueing what is left")
        result = work()
        db.session.commit()
    return result


# ---- overdue invoices -------------------------------------------------------------------------


def overdue_notices() -> list[Notice]:
    rows = db.session.execute(
        select(
            Invoice.id,
            Invoice.number,
            Invoice.due_date,
            Invoice.total,
            Invoice.amount_paid,
            Invoice.client_id,
            Client.name,
            Client.relationship_manager_id,
        )
        .join(Client, Client.id == Invoice.client_id)
        .where(Invoice.status == "overdue"),
        execution_options=UNSCOPED,
    ).all()
    notices = []
    for pk, number, due, total, paid, client_id, name, rm_id in rows:
        balance = _money(total - paid)
        notices.append(
            Notice(
                "invoice_overdue",
                f"invoice-overdue:{pk}",
                f"Invoice {number} is overdue",
                f"Dear {name}, invoice {number} was due on {due}; {balance} is still to be "
                "paid. Please arrange payment or contact us if you have already paid.",
                client_id=client_id,
            )
        )
        if rm_id is not None:
            notices.append(
                Notice(
                    "invoice_overdue_rm",
                    f"invoice-overdue-rm:{pk}",
                    f"{name}: invoice {number} is overdue",
                    f"Invoice {number} of {name} was due on {due}; {balance} is unpaid.",
                    user_id=rm_id,
                    link=invoice_link(pk),
                )
            )
    return notices


def mark_overdue(today: date | None = None) -> dict[str, int]:
    """Mark past-due invoices overdue, expire stale quotations, send reminders; commits."""
    today = today or utcnow().date()
    marked = db.session.execute(
        update(Invoice)
        .where(Invoice.status.in_(("issued", "partially_paid")), Invoice.due_date < today)
        .values(status="overdue")
        .execution_options(synchronize_session=False)
    ).rowcount
    expired = db.session.execute(
        update(Quotation)
        .where(Quotation.status.in_(("draft", "sent")), Quotation.valid_until < today)
        .values(status="expired")
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    reminders = _committed(lambda: _send(overdue_notices()))
    return {"overdue": marked, "quotations_expired": expired, "reminders": reminders}


# ---- contract renewals ------------------------------------------------------------------------


def renewal_notices(today: date, thresholds: tuple[int, ...]) -> list[Notice]:
    thresholds = tuple(sorted(set(thresholds), reverse=True))  # 60, 30
    windows = [
        and_(
            Contract.renewal_date >= today + timedelta(days=days - CATCH_UP_DAYS),
            Contract.renewal_date <= today + timedelta(days=days),
        )
        for days in thresholds
    ]
    rows = db.session.execute(
        select(
            Contract.id,
            Contract.title,
            Contract.renewal_date,
            Contract.created_by_id,
            Client.name,
            Client.relationship_manager_id,
        )
        .join(Client, Client.id == Contract.client_id)
        .where(Contract.status == "active", or_(*windows)),
        execution_options=UNSCOPED,
    ).all()
    notices = []
    for pk, title, renewal, creator_id, client_name, rm_id in rows:
        days_left = (renewal - today).days
        # the nearest threshold the contract has reached (30 once within 30 days, else 60)
        threshold = min(days for days in thresholds if days_left <= days)
        for user_id in dict.fromkeys(u for u in (rm_id, creator_id) if u is not None):
            notices.append(
                Notice(
                    "contract_renewal",
                    f"contract-renewal:{pk}:{renewal}:{threshold}:{user_id}",
                    f"{client_name}: contract renews in {days_left} days",
                    f"The contract “{title}” of {client_name} is up for renewal on {renewal} "
                    f"({days_left} days).",
                    user_id=user_id,
                    link=contract_link(pk),
                )
            )
    return notices


def send_contract_renewals(today: date | None = None) -> dict[str, int]:
    """Queue today's contract renewal reminders; commits."""
    today = today or utcnow().date()
    thresholds = tuple(current_app.config.get("CRM_CONTRACT_RENEWAL_DAYS", (60, 30)))
    sent = _committed(lambda: _send(renewal_notices(today, thresholds)))
    return {"contract_renewal": sent}

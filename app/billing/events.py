"""The billing desk on a client's timeline and on staff calendars.

Timeline: the client's invoices (when created, with their number, total and status) and the
payments received on them. Calendar: the renewal dates of the active contracts of clients a
member of staff is relationship manager of. Importing this module registers them.
"""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Select, select

from app.billing.models import Contract, Invoice, Payment
from app.clients.models import Client
from app.clients.timeline import TimelineEvent, register_timeline_source
from app.extensions import db
from app.lending.events import _at, _days_in, _money
from app.security.scoping import UNSCOPED
from app.tasks.calendar import CalendarEvent, register_calendar_source


def _invoice_name(number: str | None, invoice_id: int) -> str:
    return number or f"draft invoice #{invoice_id}"


def _invoice_event(row) -> TimelineEvent:
    return TimelineEvent(
        at=row.at,
        kind="invoice",
        title=f"Invoice {_invoice_name(row.number, row.id)}: {_money(row.total)}",
        detail=f"{row.status.replace('_', ' ')}, due {row.due_date:%d %b %Y}",
        url=f"/invoiceview/show/{row.id}",
        who=row.username,
    )


@register_timeline_source("invoice", "Invoices", _invoice_event)
def invoice_rows(client_id: int) -> Select:
    return (
        select(
            Invoice.created_at.label("at"),
            Invoice.id,
            Invoice.number,
            Invoice.total,
            Invoice.status,
            Invoice.due_date,
            User.username,
        )
        .outerjoin(User, User.id == Invoice.created_by_id)
        .where(Invoice.client_id == client_id)
    )


def _payment_event(row) -> TimelineEvent:
    return TimelineEvent(
        at=row.at,
        kind="invoice_payment",
        title=f"Payment of {_money(row.amount)} on {_invoice_name(row.number, row.invoice_id)}",
        detail=f"paid {row.paid_on:%d %b %Y} by {row.method.replace('_', ' ')}",
        url=f"/invoiceview/show/{row.invoice_id}",
        who=row.username,
    )


@register_timeline_source("invoice_payment", "Invoice payments", _payment_event)
def payment_rows(client_id: int) -> Select:
    return (
        select(
            Payment.created_at.label("at"),
            Payment.invoice_id,
            Invoice.number,
            Payment.amount,
            Payment.paid_on,
            Payment.method,
            User.username,
        )
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .outerjoin(User, User.id == Payment.recorded_by_id)
        .where(Invoice.client_id == client_id)
    )


@register_calendar_source
def contract_renewal_events(user_id: int, start: datetime, end: datetime) -> list[CalendarEvent]:
    """Renewal dates of active contracts of the clients the user manages."""
    first, after_last = _days_in(start, end)
    rows = db.session.execute(
        select(Contract.id, Contract.title, Contract.renewal_date, Client.name)
        .join(Client, Client.id == Contract.client_id)
        .where(
            Client.relationship_manager_id == user_id,
            Contract.status == "active",
            Contract.renewal_date >= first,
            Contract.renewal_date < after_last,
        )
        .order_by(Contract.renewal_date, Contract.id),
        execution_options=UNSCOPED,
    )
    return [
        CalendarEvent(
            title=f"Contract renewal: {title} ({client_name})",
            start=_at(renewal_date),
            end=None,
            url=f"/contractview/show/{pk}",
            kind="contract_renewal",
            uid=f"contract-renewal-{pk}@fincrm",
        )
        for pk, title, renewal_date, client_name in rows
    ]

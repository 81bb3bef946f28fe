"""The billing desk on a client's timeline and on staff calendars.

Timeline: the client's invoices (when created, with their number, total and status) and the
payments received on them. Calendar: the renewal dates of the active contracts of clients a
member of staff is relationship manager of. Each source is one query; importing this module
registers them.
"""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select

from app.billing.models import Contract, Invoice, Payment
from app.clients.models import Client
from app.clients.timeline import TimelineEvent, _bounded, _rows, register_timeline_source
from app.extensions import db
from app.lending.events import _at, _days_in, _money
from app.security.scoping import UNSCOPED
from app.tasks.calendar import CalendarEvent, register_calendar_source


def _invoice_name(number: str | None, invoice_id: int) -> str:
    return number or f"draft invoice #{invoice_id}"


@register_timeline_source("invoice", "Invoices")
def invoice_events(client_id: int, before: datetime | None, limit: int) -> list[TimelineEvent]:
    query = (
        select(
            Invoice.id,
            Invoice.number,
            Invoice.total,
            Invoice.status,
            Invoice.due_date,
            User.username,
            Invoice.created_at,
        )
        .outerjoin(User, User.id == Invoice.created_by_id)
        .where(Invoice.client_id == client_id)
    )
    return [
        TimelineEvent(
            at=created_at,
            kind="invoice",
            title=f"Invoice {_invoice_name(number, pk)}: {_money(total)}",
            detail=f"{status.replace('_', ' ')}, due {due:%d %b %Y}",
            url=f"/invoiceview/show/{pk}",
            who=username,
        )
        for pk, number, total, status, due, username, created_at in _rows(
            _bounded(query, Invoice.created_at, before, limit)
        )
    ]


@register_timeline_source("invoice_payment", "Invoice payments")
def payment_events(client_id: int, before: datetime | None, limit: int) -> list[TimelineEvent]:
    query = (
        select(
            Payment.invoice_id,
            Invoice.number,
            Payment.amount,
            Payment.paid_on,
            Payment.method,
            User.username,
            Payment.created_at,
        )
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .outerjoin(User, User.id == Payment.recorded_by_id)
        .where(Invoice.client_id == client_id)
    )
    return [
        TimelineEvent(
            at=created_at,
            kind="invoice_payment",
            title=f"Payment of {_money(amount)} on {_invoice_name(number, invoice_id)}",
            detail=f"paid {paid_on:%d %b %Y} by {method.replace('_', ' ')}",
            url=f"/invoiceview/show/{invoice_id}",
            who=username,
        )
        for invoice_id, number, amount, paid_on, method, username, created_at in _rows(
            _bounded(query, Payment.created_at, before, limit)
        )
    ]


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

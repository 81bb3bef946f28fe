"""What the navbar's search box finds, within the reader's rows.

One statement per kind of record, each through the scoped session (row scoping applies as on
the lists) and each answered by an index: a name, e-mail or phone fragment by the pg_trgm
indexes of the lead and client columns (``app.core.listing.trigram_index``; on SQLite a scan,
fine at demo size), a number by the key or the invoice number's unique index. At most
``LIMIT`` rows per kind, newest first, with a link to the list filtered the same way when the
list has that filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import and_, or_, select

from app.billing.models import Invoice
from app.clients.models import Client
from app.core.errors import DomainError
from app.extensions import db
from app.leads.models import Lead

LIMIT = 10
MIN_LENGTH = 2
MAX_LENGTH = 100
CONTAINS = 2
"""FAB's index of the "Contains" filter of a text column in list URLs (``_flt_2_<column>``)."""
PHONE = re.compile(r"^\+?[\d\s().-]{6,}$")
NUMBER = re.compile(r"^#?(\d{1,9})$")
INVOICE = re.compile(r"^INV-\d{4}-\d{1,6}$", re.I)


@dataclass(frozen=True)
class Hit:
    text: str
    url: str
    note: str = ""


@dataclass
class Group:
    kind: str
    title: str
    hits: list[Hit] = field(default_factory=list)
    more_url: str | None = None
    """The list filtered the same way, when more than ``LIMIT`` rows may match."""


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _list_url(view: str, column: str, value: str) -> str:
    return f"/{view}/list/?" + urlencode({f"_flt_{CONTAINS}_{column}": value})


def clean_query(raw: str | None) -> str:
    query = " ".join((raw or "").split())
    if len(query) < MIN_LENGTH:
        raise DomainError(f"Type at least {MIN_LENGTH} characters to search.")
    if len(query) > MAX_LENGTH:
        raise DomainError(f"A search is at most {MAX_LENGTH} characters.")
    return query


def what_is_asked(query: str) -> tuple[str, str]:
    """(kind of search, the value compared): number, invoice, email, phone or name."""
    if INVOICE.match(query):
        return "invoice", query.upper()
    if number := NUMBER.match(query):
        return "number", number.group(1)
    if "@" in query:
        return "email", query.lower()
    if PHONE.match(query):
        return "phone", re.sub(r"\D", "", query)
    return "name", query


def _lead_where(kind: str, value: str) -> Any:
    if kind == "number":
        return Lead.id == int(value)
    if kind == "email":
        return Lead.email.ilike(_like(value), escape="\\")
    if kind == "phone":
        return Lead.phone.ilike(_like(value), escape="\\")
    words = value.split()
    # every word in the first or the last name (or the company): "meera shah", "shah"
    return and_(
        *(
            or_(
                Lead.first_name.ilike(_like(w), escape="\\"),
                Lead.last_name.ilike(_like(w), escape="\\"),
                Lead.company.ilike(_like(w), escape="\\"),
            )
            for w in words
        )
    )


def _client_where(kind: str, value: str) -> Any:
    if kind == "number":
        return Client.id == int(value)
    if kind == "email":
        return Client.email.ilike(_like(value), escape="\\")
    if kind == "phone":
        return Client.phone.ilike(_like(value), escape="\\")
    return and_(*(Client.name.ilike(_like(w), escape="\\") for w in value.split()))


def _more(kind: str, value: str, view: str, name_column: str) -> str | None:
    if kind in ("email", "phone"):
        return _list_url(view, kind, value)
    if kind == "name" and len(value.split()) == 1:
        return _list_url(view, name_column, value)
    return None


def search(raw: str | None, may_read: Any) -> tuple[str, list[Group]]:
    """The groups of hits for ``raw``; ``may_read(resource)`` tells which kinds the reader may
    open (a kind they may not read is not searched at all)."""
    query = clean_query(raw)
    kind, value = what_is_asked(query)
    groups: list[Group] = []
    if kind != "invoice" and may_read("Lead"):
        rows = db.session.scalars(
            select(Lead).where(_lead_where(kind, value)).order_by(Lead.id.desc()).limit(LIMIT + 1)
        ).all()
        hits = [
            Hit(
                f"{lead.first_name} {lead.last_name}",
                f"/leadview/show/{lead.id}",
                " · ".join(x for x in (f"Lead {lead.id}", lead.status, lead.email or "") if x),
            )
            for lead in rows[:LIMIT]
        ]
        more = _more(kind, value, "leadview", "last_name") if len(rows) > LIMIT else None
        groups.append(Group("lead", "Leads", hits, more))
    if kind != "invoice" and may_read("Client"):
        rows = db.session.scalars(
            select(Client)
            .where(_client_where(kind, value))
            .order_by(Client.id.desc())
            .limit(LIMIT + 1)
        ).all()
        hits = [
            Hit(
                client.name,
                f"/clientview/show/{client.id}",
                " · ".join(x for x in (f"Client {client.id}", client.email or "") if x),
            )
            for client in rows[:LIMIT]
        ]
        more = _more(kind, value, "clientview", "name") if len(rows) > LIMIT else None
        groups.append(Group("client", "Clients", hits, more))
    if kind == "invoice" and may_read("Invoice"):
        rows = db.session.scalars(select(Invoice).where(Invoice.number == value).limit(1)).all()
        hits = [
            Hit(invoice.number, f"/invoiceview/show/{invoice.id}", invoice.status)
            for invoice in rows
        ]
        groups.append(Group("invoice", "Invoices", hits))
    return query, groups

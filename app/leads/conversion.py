"""Turning a qualified lead into a client, in one transaction (DOMAIN section 2, Conversion)."""

from __future__ import annotations

from sqlalchemy import select, update

from app.clients.models import Client
from app.clients.services import prepare_client
from app.core.errors import ConflictError, NotFound
from app.documents.models import Document
from app.extensions import db
from app.leads.models import Interaction, Lead
from app.security.scoping import Actor, current_actor


def _locked_lead(lead_id: int) -> Lead | None:
    """The lead, row-locked on PostgreSQL so two conversions of it run one after the other;
    scoped like every read (another agent's lead is 'not found')."""
    query = select(Lead).where(Lead.id == lead_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Lead)
    return db.session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def convert_lead(lead_id: int, actor: Actor | None = None) -> Client:
    """Make a client of a qualified lead: its data, interactions, documents and tasks carry over,
    and the lead becomes ``converted``, pointing at the client. The caller commits; a refusal
    (already converted, lost, not yet qualified) raises before anything is written."""
    from app.core.audit import record_event

    actor = actor if actor is not None else current_actor()
    lead = _locked_lead(lead_id)
    if lead is None:
        raise NotFound("no such lead.")
    if lead.status == "converted":
        url = f"/clientview/show/{lead.converted_client_id}"
        raise ConflictError(
            f"this lead was already converted to client #{lead.converted_client_id}.",
            "status",
            existing={"type": "client", "id": lead.converted_client_id, "url": url},
        )
    if lead.status == "lost":
        raise ConflictError("a lost lead cannot be converted.", "status")
    if lead.status != "qualified":
        raise ConflictError(
            f"only a qualified lead can be converted; this one is {lead.status}.", "status"
        )

    client = Client(
        client_type="individual",
        name=lead.full_name,
        legal_name=lead.company,
        email=lead.email,
        phone=lead.phone,
        investment_capacity=lead.investment_capacity,
        branch_id=lead.branch_id,
        relationship_manager_id=lead.assigned_agent_id,
    )
    prepare_client(client, actor)
    db.session.add(client)
    db.session.flush()
    moved = {
        "interactions": db.session.execute(
            update(Interaction).where(Interaction.lead_id == lead.id).values(client_id=client.id)
        ).rowcount,
        "documents": db.session.execute(
            update(Document)
            .where(Document.lead_id == lead.id)
            .values(client_id=client.id, lead_id=None)
        ).rowcount,
    }
    _move_tasks(lead.id, client.id)
    lead.status = "converted"
    lead.converted_client_id = client.id
    db.session.flush()
    record_event(
        "update",
        record=lead,
        detail=(
            f"converted to client #{client.id}; {moved['interactions']} interaction(s) and "
            f"{moved['documents']} document(s) carried over"
        ),
    )
    return client


def _move_tasks(lead_id: int, client_id: int) -> None:
    from app.tasks.models import Task

    db.session.execute(update(Task).where(Task.lead_id == lead_id).values(client_id=client_id))

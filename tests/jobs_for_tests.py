"""A job used by the job-facade tests: receives ids, calls a service, commits its unit of work."""

from __future__ import annotations

from app.extensions import db
from app.leads.models import Lead
from app.leads.services import add_interaction


def note_on_lead(lead_id: int, text: str) -> int:
    lead = db.session.get(Lead, lead_id)
    interaction = add_interaction(lead, kind="note", body=text, author=lead.assigned_agent)
    db.session.commit()
    return interaction.id


def always_fails() -> None:
    raise RuntimeError("the price feed answered 503")

"""What counts as a client's recent activity for an offer's activity rule.

A *source* is a function ``(client_id_column, since) -> EXISTS clause``: true when the client
(the outer query's ``client.id``) did something of its kind at or after ``since``. An offer for
*active* clients wants any source true; for *inactive* clients, none. Desks with client activity
of their own (trades, exchanges) call ``register_activity_source`` from their module; the leads
desk's interactions are registered here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ColumnElement, exists, false, or_, select

ActivitySource = Callable[[ColumnElement, datetime], ColumnElement[bool]]
ACTIVITY_SOURCES: dict[str, ActivitySource] = {}


def register_activity_source(name: str, fn: ActivitySource) -> ActivitySource:
    """Count ``fn``'s rows as client activity (registering a name again replaces it)."""
    ACTIVITY_SOURCES[name] = fn
    return fn


def any_activity_since(client_id: ColumnElement, since: datetime) -> ColumnElement[bool]:
    """True when some registered source has activity of the client at or after ``since``."""
    clauses = [source(client_id, since) for source in ACTIVITY_SOURCES.values()]
    if not clauses:
        return false()
    return clauses[0] if len(clauses) == 1 else or_(*clauses)


def _interactions(client_id: ColumnElement, since: datetime) -> ColumnElement[bool]:
    from app.leads.models import Interaction

    return exists(
        select(Interaction.id).where(
            Interaction.client_id == client_id, Interaction.occurred_at >= since
        )
    )


register_activity_source("interaction", _interactions)

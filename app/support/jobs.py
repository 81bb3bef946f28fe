"""The SLA breach sweep (every five minutes, ``app.core.schedule``).

Cases not resolved by their due time are found in SQL (``status IN (new, open, waiting) AND
sla_due_at < now AND breach_notified_at IS NULL``, on the ``(status, sla_due_at)`` index). The
assignee and a manager (the assignee's own, else the managers of the client's branch) hear of
each breach once: the case is stamped in the same transaction as the outbox rows, and each row's
key names the case, its due time and the recipient, so a second sweep or two sweeps at once add
nothing. Reopening a case (a new due time) makes a new breach possible.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask_appbuilder.security.sqla.models import Role, User, assoc_user_role
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.clients.models import Client
from app.comms.services import notify
from app.core.localtime import format_local, zone_of_client
from app.core.types import utcnow
from app.extensions import db
from app.org.models import StaffProfile
from app.security.scoping import UNSCOPED
from app.support.models import OPEN_STATUSES, SupportCase
from app.support.services import time_left_in_words

log = logging.getLogger(__name__)

BATCH = 200


def _branch_managers(branch_id: int) -> list[int]:
    return list(
        db.session.scalars(
            select(User.id)
            .join(assoc_user_role, assoc_user_role.c.user_id == User.id)
            .join(Role, Role.id == assoc_user_role.c.role_id)
            .join(StaffProfile, StaffProfile.user_id == User.id)
            .where(
                Role.name == "Manager",
                User.active.is_(True),
                StaffProfile.branch_id == branch_id,
            )
            .order_by(User.id),
            execution_options=UNSCOPED,
        )
    )


def _recipients(case: SupportCase) -> list[int]:
    """The assignee, then their manager, or (no assignee or no manager) the branch's managers."""
    people: list[int] = []
    if case.assignee_id is not None:
        people.append(case.assignee_id)
        manager = db.session.scalar(
            select(StaffProfile.manager_id).where(StaffProfile.user_id == case.assignee_id),
            execution_options=UNSCOPED,
        )
        if manager is not None:
            people.append(manager)
    if len(people) < 2:
        people.extend(_branch_managers(case.client.branch_id)[:1])
    return list(dict.fromkeys(people))


def send_breach_reminders(now: datetime | None = None) -> int:
    """Tell the assignee and a manager of each case past its due time, once per due time;
    commits batch by batch. Returns how many cases were reported."""
    now = now or utcnow()
    reported = 0
    while True:
        query = (
            select(SupportCase)
            .where(
                SupportCase.status.in_(OPEN_STATUSES),
                SupportCase.sla_due_at < now,
                SupportCase.breach_notified_at.is_(None),
            )
            .order_by(SupportCase.sla_due_at, SupportCase.id)
            .limit(BATCH)
            .options(selectinload(SupportCase.client).selectinload(Client.branch))
        )
        if db.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=SupportCase, skip_locked=True)
        cases = list(db.session.scalars(query, execution_options=UNSCOPED))
        if not cases:
            break
        for case in cases:
            _report_breach(case, now)
            reported += 1
        db.session.commit()
        if len(cases) < BATCH:
            break
    return reported


def _report_breach(case: SupportCase, now: datetime) -> None:
    due = int(case.sla_due_at.timestamp())
    due_text = format_local(case.sla_due_at, zone_of_client(case.client_id))
    subject = f"SLA breached: case #{case.id} {case.subject}"
    body = (
        f"Support case #{case.id} for {case.client.name} ({case.priority} priority, "
        f"{case.status}) was due by {due_text} and is {time_left_in_words(case, now)}."
    )
    for user_id in _recipients(case):
        notify(
            "support_breach",
            f"support-breach:{case.id}:{due}:{user_id}",
            subject,
            body,
            user_id=user_id,
            related=case,
            link=f"/supportcaseview/show/{case.id}",
        )
    case.breach_notified_at = now
    log.info("support case %s breached its SLA (due %s)", case.id, due_text)

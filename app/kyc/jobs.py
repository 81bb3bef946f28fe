"""The daily KYC expiry job (DOMAIN section 4, Expiry).

For each client's current documents (newest version of a type) with an expiry date:
30 days before and 7 days before, alert the relationship manager and Compliance; on the day it
expires, set the client's KYC status to ``expired`` and give the relationship manager a re-KYC
task. Each stage of each document is acted on once: a ``KycExpiryAlert`` row with a unique
(document, stage) key is written in the same transaction as the alerts, so a second run, or two
runs at once, change nothing. A run that missed days catches up with the latest stage only.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.clients.models import Client
from app.core.types import utcnow
from app.documents.models import Document
from app.extensions import db
from app.kyc.models import KycExpiryAlert
from app.kyc.report import current_client_documents
from app.org.services import active_users_with_role
from app.security.scoping import UNSCOPED

log = logging.getLogger(__name__)

CATCH_UP_DAYS = 30
"""Documents that expired up to this long ago are still handled (a job that was down)."""


def stage_for(expires_on: date, today: date) -> str | None:
    days = (expires_on - today).days
    if days <= 0:
        return "expired"
    if days <= 7:
        return "7"
    if days <= 30:
        return "30"
    return None


def check_document_expiry(today: date | None = None) -> dict[str, int]:
    """Run the expiry stages due today; returns how many documents reached each stage."""
    today = today or utcnow().date()
    current = current_client_documents().where(
        Document.expires_on.is_not(None),
        Document.expires_on <= today + timedelta(days=30),
        Document.expires_on > today - timedelta(days=CATCH_UP_DAYS),
    )
    due = [
        (document, stage_for(document.expires_on, today))
        for document in db.session.scalars(current, execution_options=UNSCOPED)
    ]
    done = {
        (document_id, stage)
        for document_id, stage in db.session.execute(
            select(KycExpiryAlert.document_id, KycExpiryAlert.stage).where(
                KycExpiryAlert.document_id.in_([d.id for d, _ in due])
            ),
            execution_options=UNSCOPED,
        )
    }
    officers = active_users_with_role("Compliance") if due else []
    counts = {"30": 0, "7": 0, "expired": 0}
    for document, stage in due:
        if stage is None or (document.id, stage) in done:
            continue
        try:
            with db.session.begin_nested():
                db.session.add(KycExpiryAlert(document_id=document.id, stage=stage))
                db.session.flush()  # the unique key: another run got here first
                _act(document, stage, officers, today)
        except IntegrityError:
            log.info("expiry stage %s of document %s already handled", stage, document.id)
            continue
        counts[stage] += 1
    db.session.commit()
    return counts


def _act(document: Document, stage: str, officers: list[int], today: date) -> None:
    from app.comms.services import notify

    client = db.session.scalar(
        select(Client).where(Client.id == document.client_id), execution_options=UNSCOPED
    )
    label = document.doc_type.replace("_", " ")
    if stage == "expired":
        subject = f"Expired: {client.name}'s {label}"
        body = (
            f"{client.name}'s {label} expired on {document.expires_on:%Y-%m-%d}. "
            "The client's KYC status is now expired; a re-KYC task was created."
        )
        client.kyc_status = "expired"
        _re_kyc_task(client, label, today)
    else:
        subject = f"{client.name}'s {label} expires in {stage} days"
        body = (
            f"{client.name}'s {label} (v{document.version}) expires on "
            f"{document.expires_on:%Y-%m-%d}. Ask the client for a new one."
        )
    recipients = {client.relationship_manager_id, *officers} - {None}
    for user_id in sorted(recipients):
        notify(
            "kyc_expiry",
            f"kyc-expiry:{document.id}:{stage}:{user_id}",
            subject,
            body,
            user_id=user_id,
            related=document,
            link=f"/clientview/show/{client.id}",
        )


def _re_kyc_task(client: Client, label: str, today: date) -> None:
    from app.tasks.services import create_task

    assignee = client.relationship_manager_id
    if assignee is None:
        log.warning("client %s has no relationship manager: no re-KYC task", client.id)
        return
    create_task(
        None,
        title=f"Re-KYC: {client.name} ({label} expired)",
        description="Collect a current document and submit a new KYC case.",
        assignee_id=assignee,
        client_id=client.id,
        due_at=datetime.combine(today + timedelta(days=7), time(9, 0)),
        priority="high",
    )


def run_kyc_expiry() -> dict[str, int]:
    """The scheduled entry point."""
    return check_document_expiry()

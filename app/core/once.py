"""One submission per rendered form, for the forms that move money.

A double click, a page resubmitted from the browser's history or a POST retried by a proxy
would otherwise record the same repayment or payment twice: each copy is valid on its own. Such
a form carries a one-time ``submission_id`` (``submission_token()`` in its template); the view
claims it with ``claim_submission`` in the same transaction as the work. The first copy to
commit wins; a copy sent at the same moment waits for it and is then refused with a clear
message, and nothing is done twice. A transaction that fails releases its claim, so a form that
was refused for a typo can be corrected and sent again.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Integer, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.core.errors import ConflictError, FieldError
from app.core.types import UTCDateTime, utcnow
from app.extensions import db

FIELD = "submission_id"
T = TypeVar("T")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class FormSubmission(db.Model):
    """A form already acted on (kept as long as the ledger: it is a few bytes a form)."""

    __tablename__ = "form_submission"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    action: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(Integer)  # no FK: kept if the user goes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def submission_token() -> str:
    """A fresh one-time id for a form being rendered."""
    return secrets.token_urlsafe(24)


def claim_submission(token: str | None, action: str) -> None:
    """Record that the form ``token`` is being acted on, or refuse (409) a copy of a form
    already acted on. No token (the API, a job, an old page) claims nothing."""
    if not token:
        return
    if not _TOKEN.match(token):
        raise FieldError("is not a form id this server made; reload the page.", FIELD)
    from app.security.scoping import current_actor

    actor = current_actor()
    db.session.add(
        FormSubmission(token=token, action=action, user_id=actor.user_id if actor else None)
    )
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        raise ConflictError(
            "this form was already sent and acted on once; it was not done again. "
            "Reload the page to see the result.",
            FIELD,
        ) from exc


def once_per_form(action: str, work: Callable[[], T]) -> T:
    """Claim the posted form's ``submission_id``, then do ``work`` (same transaction)."""
    from flask import request

    claim_submission(request.form.get(FIELD), action)
    return work()

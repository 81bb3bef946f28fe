"""Chat transcripts attached to a support case.

A transcript is JSON, uploaded as a file or sent as the request's body::

    {"messages": [{"at": "2026-12-07T09:15:00+05:30", "from": "client", "name": "Asha",
                   "text": "My statement is missing"}, ...]}

(a bare list of messages is accepted too). It is checked whole before anything is written: its
size, that it is JSON, and each message's time (ISO 8601 with its offset), side (``client`` or
``staff``) and text. Each message becomes a message of the case's conversation; a staff message
earlier than the case's first response becomes its first response.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.core.errors import ConflictError, FieldError
from app.core.types import utcnow
from app.core.validators import clean_text
from app.extensions import db
from app.security.scoping import Actor, current_actor
from app.support import services
from app.support.models import SupportMessage, SupportTranscript

MAX_MESSAGES = 2000
JSON_TYPES = ("application/json", "text/json")
SIDES = {"client": "inbound", "staff": "outbound"}


@dataclass(frozen=True)
class ChatLine:
    at: datetime
    side: str
    name: str | None
    text: str


def parse_transcript(data: bytes, content_type: str | None) -> list[ChatLine]:
    """The transcript's messages, or a refusal naming what is wrong (and where)."""
    limit = int(current_app.config.get("CRM_SUPPORT_MAX_TRANSCRIPT_BYTES", 500_000))
    if not data:
        raise FieldError("is empty.", "transcript")
    if len(data) > limit:
        raise FieldError(f"is too large ({len(data):,} bytes; at most {limit:,}).", "transcript")
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime not in JSON_TYPES:
        raise FieldError(
            f"must be JSON (application/json), not {mime or 'an unnamed type'}.", "transcript"
        )
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FieldError(f"is not valid JSON: {exc}.", "transcript") from None
    messages = parsed.get("messages") if isinstance(parsed, dict) else parsed
    if not isinstance(messages, list) or not messages:
        raise FieldError("needs a non-empty list of messages.", "transcript")
    if len(messages) > MAX_MESSAGES:
        raise FieldError(f"has {len(messages)} messages; at most {MAX_MESSAGES}.", "transcript")
    return [_line(item, number) for number, item in enumerate(messages, start=1)]


def _line(item: Any, number: int) -> ChatLine:
    where = f"message {number}"
    if not isinstance(item, dict):
        raise FieldError(f"{where} is not an object.", "transcript")
    side = item.get("from")
    if side not in SIDES:
        raise FieldError(f"{where}: 'from' must be client or staff.", "transcript")
    at_text = item.get("at")
    try:
        at = datetime.fromisoformat(at_text) if isinstance(at_text, str) else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise FieldError(
            f"{where}: 'at' must be an ISO 8601 time with its offset (2026-12-07T09:15:00+05:30).",
            "transcript",
        )
    if at > utcnow():
        raise FieldError(f"{where}: 'at' is in the future.", "transcript")
    try:
        text = clean_text(item.get("text"), "text", 4000, required=True)
        name = clean_text(item.get("name"), "name", 120)
    except FieldError as exc:
        raise FieldError(f"{where}: {exc}", "transcript") from None
    return ChatLine(at, side, name, text)


def attach_transcript(
    case_id: Any,
    data: bytes,
    content_type: str | None,
    source_name: str | None = None,
    actor: Actor | None = None,
) -> SupportTranscript:
    """Check the transcript whole, then add it and its messages to the case (flushes)."""
    actor = actor if actor is not None else current_actor()
    lines = parse_transcript(data, content_type)
    case = services.get_case(case_id, lock=True)
    if case.status == "closed":
        raise ConflictError(f"case #{case.id} is closed; nothing can be added to it.")
    digest = hashlib.sha256(data).hexdigest()
    already = db.session.scalar(
        select(SupportTranscript.id).where(
            SupportTranscript.case_id == case.id, SupportTranscript.sha256 == digest
        )
    )
    if already is not None:
        raise ConflictError(f"this transcript is already attached (#{already}).", "transcript")
    transcript = SupportTranscript(
        case_id=case.id,
        source_name=clean_text(source_name, "file name", 200),
        message_count=len(lines),
        size_bytes=len(data),
        sha256=digest,
        uploaded_by_id=actor.user_id if actor else None,
        uploaded_at=utcnow(),
    )
    db.session.add(transcript)
    db.session.flush()
    for line in lines:
        db.session.add(
            SupportMessage(
                case=case,
                direction=SIDES[line.side],
                channel="chat",
                sender=line.name or line.side,
                body=line.text,
                occurred_at=line.at,
                transcript_id=transcript.id,
            )
        )
    first_staff = min((line.at for line in lines if line.side == "staff"), default=None)
    if first_staff is not None and (
        case.first_response_at is None or first_staff < case.first_response_at
    ):
        case.first_response_at = first_staff
    db.session.flush()
    return transcript

"""Uploading and serving documents: checked by their bytes, versioned, stored, audited."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import filetype
from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction

from app.clients.models import Client
from app.core.errors import ConflictError, DomainError, FieldError, NotFound
from app.core.storage import StorageError, get_storage
from app.core.validators import clean_text
from app.documents.models import DOC_TYPES, Document
from app.extensions import db
from app.leads.models import Lead
from app.security.scoping import UNSCOPED, Actor, current_actor


class StorageUnavailable(DomainError):
    """The file cannot be reached (backend down or not configured): try again later."""

    status = 503


PDF, PNG, JPEG = "application/pdf", "image/png", "image/jpeg"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMAT_NAMES = {PDF: "PDF", PNG: "PNG", JPEG: "JPEG", DOCX: "Word (DOCX)", XLSX: "Excel (XLSX)"}
EXTENSIONS = {PDF: "pdf", PNG: "png", JPEG: "jpg", DOCX: "docx", XLSX: "xlsx"}

_SCANS = frozenset({PDF, PNG, JPEG})
# Which formats each document type accepts; anything else is refused.
ALLOWED_FORMATS: dict[str, frozenset[str]] = {doc_type: _SCANS for doc_type in DOC_TYPES}
ALLOWED_FORMATS.update(
    {
        "bank_statement": _SCANS | {XLSX},
        "income_proof": _SCANS | {XLSX},
        "invoice": _SCANS | {XLSX},
        "indicative_letter": _SCANS | {DOCX},
        "signed_form": _SCANS | {DOCX},
        "contract": _SCANS | {DOCX},
        "other": _SCANS | {DOCX, XLSX},
    }
)


def max_upload_bytes() -> int:
    return int(current_app.config.get("CRM_MAX_UPLOAD_BYTES", 10 * 1024 * 1024))


def sniff_format(data: bytes) -> str | None:
    """The file's real format from its first bytes (its name and the browser's word are ignored)."""
    kind = filetype.guess(data)
    return kind.mime if kind else None


def _describe(mime: str | None) -> str:
    if mime is None:
        return "not a recognised document format"
    if mime in FORMAT_NAMES:
        return f"a {FORMAT_NAMES[mime]} file"
    return f"an unsupported kind of file ({mime})"


def check_file(doc_type: str, data: bytes) -> str:
    """The format of ``data`` if a ``doc_type`` may be this file; FieldError naming why not."""
    if doc_type not in DOC_TYPES:
        raise FieldError(f"must be one of: {', '.join(DOC_TYPES)}.", "doc_type")
    if not data:
        raise FieldError("is empty (0 bytes).", "file")
    limit = max_upload_bytes()
    if len(data) > limit:
        raise FieldError(f"is {len(data):,} bytes; the limit is {limit:,} bytes.", "file")
    mime = sniff_format(data)
    allowed = ALLOWED_FORMATS[doc_type]
    if mime not in allowed:
        names = ", ".join(sorted(FORMAT_NAMES[m] for m in allowed))
        label = doc_type.replace("_", " ")
        raise FieldError(f"is {_describe(mime)}; a {label} must be {names}.", "file")
    return mime


@dataclass(frozen=True)
class Owner:
    kind: str  # "client", "lead" or "loan_application"
    record: Any


def find_owner(client_id: int | None = None, lead_id: int | None = None) -> Owner:
    """The client or lead a document belongs to, if the actor may see it (else 'not found')."""
    if (client_id is None) == (lead_id is None):
        raise FieldError("name exactly one owner: a client or a lead.", "owner")
    model, kind, pk = (
        (Client, "client", client_id) if client_id is not None else (Lead, "lead", lead_id)
    )
    record = db.session.scalar(select(model).where(model.id == pk))
    if record is None:
        raise FieldError(f"no such {kind} (or it is not one of yours).", f"{kind}_id")
    return Owner(kind, record)


def next_version(owner: Owner, doc_type: str) -> int:
    column = getattr(Document, f"{owner.kind}_id")
    current = db.session.execute(
        select(func.max(Document.version)).where(
            column == owner.record.id, Document.doc_type == doc_type
        ),
        execution_options=UNSCOPED,
    ).scalar()
    return (current or 0) + 1


def upload_document(
    owner: Owner,
    doc_type: str,
    filename: str | None,
    data: bytes,
    expires_on: date | None = None,
    actor: Actor | None = None,
) -> Document:
    """Check, store and record a document as the next version of its type for its owner.

    The bytes are stored first under a key the server makes; the row is added to the session
    (the caller commits, best with ``commit_upload``). Never a row without its file; and if the
    transaction does not commit (a refused row, a database error, a rollback), the stored file
    is removed again, so no file is left that nothing references.
    """
    actor = actor if actor is not None else current_actor()
    mime = check_file(doc_type, data)
    name = clean_text(filename, "file", 255) or "unnamed"
    if expires_on is not None and not isinstance(expires_on, date):
        raise FieldError("must be a date.", "expires_on")
    version = next_version(owner, doc_type)
    key = f"documents/{owner.kind}/{owner.record.id}/{doc_type}/v{version}-{uuid.uuid4().hex}.{EXTENSIONS[mime]}"
    uploader = db.session.get(User, actor.user_id) if actor and actor.user_id else None
    if uploader is None:  # checked before storing, so a refused upload writes nothing
        raise FieldError("an upload needs a signed-in member of staff.", "uploaded_by")
    storage = get_storage()
    try:
        storage.put(key, data, mime)
    except StorageError as exc:
        raise StorageUnavailable(f"the file could not be stored ({exc}); try again later.") from exc
    db.session.info.setdefault(_UNCOMMITTED_FILES, []).append((storage, key))
    document = Document(
        doc_type=doc_type,
        client_id=owner.record.id if owner.kind == "client" else None,
        lead_id=owner.record.id if owner.kind == "lead" else None,
        loan_application_id=owner.record.id if owner.kind == "loan_application" else None,
        original_name=name,
        storage_backend=storage.name,
        storage_key=key,
        content_type=mime,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        version=version,
        expires_on=expires_on,
        uploaded_by=uploader,
    )
    db.session.add(document)
    return document


def commit_upload() -> None:
    """Commit an upload. Two uploads of the same type for the same owner at the same moment
    cannot both be the next version: the second is refused (409, nothing kept) and may simply
    be sent again."""
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        if "version" not in str(exc.orig):
            raise
        raise ConflictError(
            "another version of this document was saved at the same moment; upload it again.",
            "file",
        ) from exc


# Files stored in the current transaction: kept once it commits, removed if it does not.
_UNCOMMITTED_FILES = "crm_uncommitted_files"


@event.listens_for(Session, "after_commit")
def _keep_stored_files(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint's commit is not the transaction's
        session.info.pop(_UNCOMMITTED_FILES, None)


@event.listens_for(Session, "after_transaction_end")
def _remove_files_of_a_failed_transaction(session: Session, transaction: SessionTransaction):
    if transaction.parent is not None or _UNCOMMITTED_FILES not in session.info:
        return
    for storage, key in session.info.pop(_UNCOMMITTED_FILES):
        try:
            storage.remove_unreferenced(key)
        except (StorageError, OSError) as exc:  # nothing references it; a sweep may find it
            current_app.logger.warning("could not remove the unreferenced file %s: %s", key, exc)


@dataclass(frozen=True)
class Download:
    document: Document
    url: str | None  # a presigned URL (S3), or None: stream ``data``
    data: bytes | None


def open_document(document_id: int, inline: bool = False) -> Download:
    """A document the actor may see, for download (or, ``inline``, to view in the page); the
    access is audited either way."""
    from app.core.audit import record_event

    document = db.session.scalar(select(Document).where(Document.id == document_id))
    if document is None:
        raise NotFound("no such document.")
    storage = get_storage()
    if document.storage_backend != storage.name:
        raise StorageUnavailable(
            f"this document is kept on the {document.storage_backend} storage, but the app is "
            f"configured for {storage.name}; ask an administrator."
        )
    seconds = int(current_app.config.get("CRM_DOWNLOAD_URL_SECONDS", 300))
    url = storage.download_url(
        document.storage_key, document.original_name, document.content_type, seconds, inline
    )
    try:
        data = None if url else storage.get(document.storage_key)
    except (StorageError, FileNotFoundError) as exc:
        raise StorageUnavailable(f"the stored file cannot be read ({exc}).") from exc
    record_event(
        "download",
        record=document,
        detail=f"{document.doc_type} v{document.version}" + (" (viewed in page)" if inline else ""),
    )
    return Download(document, url, data)

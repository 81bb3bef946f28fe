"""Recording what happened, in a hash chain nobody can quietly edit.

* Every create, update and delete of a business record is captured by one ORM hook
  (``after_flush``) with field-level before/after values, sensitive fields masked, and written in
  the same transaction as the change: if the change rolls back, so does its audit row.
* Security events (logins, failed logins, logouts, permission denials, refused input, downloads,
  exports, reveals) are written by ``record_event`` on a connection of their own and committed at
  once, whatever happens to the request afterwards.
* Appends are serialised (a PostgreSQL advisory lock; SQLite serialises writers itself), so each
  row's ``seq`` is the previous one plus one and its ``prev_hash`` the previous ``row_hash``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import g, has_request_context, request
from sqlalchemy import Connection, event, insert, inspect, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.base import NO_VALUE

from app.audit.models import AuditLog
from app.core.masking import mask
from app.core.types import utcnow

GENESIS_HASH = "0" * 64
_ADVISORY_LOCK_KEY = 7_301_946_201  # any constant shared by every writer of the chain

# Tables that are not business records, or whose changes are recorded as events instead.
NOT_AUDITED = {
    "audit_log",
    "ab_permission_view_role",
    "ab_permission_view",
    "ab_view_menu",
    "ab_permission",
}
# Columns that change on every sign-in; the login event records that instead.
IGNORED_COLUMNS = {
    "ab_user": {"last_login", "login_count", "fail_login_count", "changed_on", "changed_by_fk"},
    # An import's file and per-row report stay on its page; the log keeps its counts and states.
    "lead_import": {"content", "problems", "processed_rows", "updated_at"},
    # An API key's use is not a change of the key (its creation and revocation are).
    "ab_api_key": {"last_used_on"},
}
# Columns masked even though they are not marked PII on the model (FAB's own tables).
EXTRA_MASKS = {
    "ab_user": {"password": "secret"},
    "ab_api_key": {"key_hash": "secret", "lookup_hash": "secret"},
}

CONTENT_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_name",
    "client_addr",
    "action",
    "record_type",
    "record_id",
    "changes",
    "detail",
    "prev_hash",
)


@dataclass
class Entry:
    action: str
    record_type: str | None = None
    record_id: str | None = None
    changes: dict[str, list[Any]] | None = None
    detail: str | None = None
    actor_id: int | None = None
    actor_name: str | None = None


# ---- who and where ----------------------------------------------------------------------


def _who() -> tuple[int | None, str, str | None]:
    from app.security.scoping import current_actor

    actor = current_actor()
    address = request.remote_addr if has_request_context() else None
    if actor is None:
        return None, "system", address
    if actor.user_id is None:
        return None, "anonymous", address
    return actor.user_id, actor.username or f"user {actor.user_id}", address


# ---- the chain ----------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def row_hash(row: dict[str, Any]) -> str:
    """SHA-256 over the row's content and the previous row's hash, in a canonical form."""
    content = {name: _jsonable(row.get(name)) for name in CONTENT_FIELDS}
    if isinstance(row.get("occurred_at"), dt.datetime):
        content["occurred_at"] = (
            row["occurred_at"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        )
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def append_entries(connection: Connection, entries: list[Entry]) -> None:
    """Add entries at the end of the chain, inside the caller's transaction."""
    if not entries:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    table = AuditLog.__table__
    last = connection.execute(
        select(table.c.seq, table.c.row_hash).order_by(table.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (last.seq, last.row_hash) if last else (0, GENESIS_HASH)
    actor_id, actor_name, address = _who()
    now = utcnow().replace(microsecond=utcnow().microsecond)
    rows = []
    for entry in entries:
        seq += 1
        row = {
            "seq": seq,
            "occurred_at": now,
            "actor_id": entry.actor_id if entry.actor_name else actor_id,
            "actor_name": entry.actor_name or actor_name,
            "client_addr": address,
            "action": entry.action,
            "record_type": entry.record_type,
            "record_id": entry.record_id,
            "changes": json.dumps(entry.changes, sort_keys=True, default=str)
            if entry.changes
            else None,
            "detail": entry.detail,
            "prev_hash": prev,
        }
        row["row_hash"] = prev = row_hash(row)
        rows.append(row)
    connection.execute(insert(table), rows)


def record_event(
    action: str,
    record: Any = None,
    detail: str | None = None,
    record_type: str | None = None,
    record_id: Any = None,
    actor_id: int | None = None,
    actor_name: str | None = None,
) -> None:
    """Record a security event now, committed on its own connection."""
    from app.extensions import db

    if record is not None:
        record_type = record.__tablename__
        record_id = inspect(record).mapper.primary_key_from_instance(record)[0]
    entry = Entry(
        action=action,
        record_type=record_type,
        record_id=None if record_id is None else str(record_id),
        detail=detail,
        actor_id=actor_id,
        actor_name=actor_name,
    )
    if db.session.info.get("crm_audit_chain_locked"):
        # This request's transaction already holds the chain's lock (it wrote audit rows): a
        # second connection would wait for it forever. Append in the same transaction instead.
        append_entries(db.session.connection(), [entry])
        return
    with db.engine.begin() as connection:
        append_entries(connection, [entry])


REJECTION_RECORDED = "crm_rejection_recorded"
"""Set on ``g`` once a request's refusal is in the log, so it is not recorded twice."""


def record_rejection(record_type: str, reason: str) -> None:
    """Input a rule refused: who tried what, and why (nothing else was written)."""
    where = f"{request.method} {request.path}: " if has_request_context() else ""
    record_event("rejected", record_type=record_type, detail=f"{where}{reason}"[:2000])
    if has_request_context():
        g.setdefault(REJECTION_RECORDED, True)


# ---- create / update / delete, from the ORM -----------------------------------------------


def _masked(table: str, column: Any, value: Any) -> Any:
    kind = column.info.get("pii") or EXTRA_MASKS.get(table, {}).get(column.key)
    if kind and value is not None:
        return mask(kind, value)
    return _jsonable(value)


def _snapshot_unloaded_before_values(session: Session, flush_context: Any, instances: Any) -> None:
    """An attribute set while expired (e.g. after a commit) has no 'before' in its history;
    read those columns' committed values once per object so the audit row can show them."""
    for obj in list(session.dirty):
        if not _audited(obj):
            continue
        state = inspect(obj)
        missing = [
            attr
            for attr in state.mapper.column_attrs
            if (h := state.attrs[attr.key].history).added and not h.deleted and not h.unchanged
        ]
        if not missing or state.key is None:
            continue
        pk_columns = state.mapper.primary_key
        query = select(*[attr.columns[0] for attr in missing]).where(
            *[col == value for col, value in zip(pk_columns, state.key[1], strict=True)]
        )
        with session.no_autoflush:
            row = session.execute(query, execution_options={"crm_unscoped": True}).first()
        if row is not None:
            before = session.info.setdefault("audit_before", {})
            before[id(obj)] = {attr.key: row[i] for i, attr in enumerate(missing)}


def _changes(
    obj: Any, action: str, before_values: dict[str, Any] | None = None
) -> dict[str, list[Any]]:
    state = inspect(obj)
    table = obj.__tablename__
    ignored = IGNORED_COLUMNS.get(table, set())
    changes: dict[str, list[Any]] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in ignored:
            continue
        column = attr.columns[0]
        if action == "create":
            value = state.attrs[key].loaded_value
            if value is not None and value is not NO_VALUE:
                changes[key] = [None, _masked(table, column, value)]
        elif action == "delete":
            value = state.attrs[key].loaded_value
            if value is not None and value is not NO_VALUE:
                changes[key] = [_masked(table, column, value), None]
        else:
            history = state.attrs[key].history
            if not history.has_changes():
                continue
            if history.deleted:
                before = history.deleted[0]
            else:
                before = (before_values or {}).get(key)
            after = history.added[0] if history.added else None
            if before != after:
                changes[key] = [_masked(table, column, before), _masked(table, column, after)]
    return changes


def _audited(obj: Any) -> bool:
    table = getattr(obj, "__tablename__", None)
    return table is not None and table not in NOT_AUDITED


def _entries_for_flush(session: Session) -> Iterator[Entry]:
    for action, objects in (
        ("create", session.new),
        ("update", session.dirty),
        ("delete", session.deleted),
    ):
        for obj in list(objects):
            if not _audited(obj):
                continue
            if action == "update" and not session.is_modified(obj, include_collections=False):
                continue
            changes = _changes(obj, action, session.info.get("audit_before", {}).get(id(obj)))
            if action == "update" and not changes:
                continue
            key = inspect(obj).mapper.primary_key_from_instance(obj)
            yield Entry(
                action=action,
                record_type=obj.__tablename__,
                record_id=str(key[0]) if key and key[0] is not None else None,
                changes=changes,
            )


def _audit_flush(session: Session, flush_context: Any) -> None:
    entries = list(_entries_for_flush(session))
    session.info.pop("audit_before", None)
    if entries:
        append_entries(session.connection(), entries)
        session.info["crm_audit_chain_locked"] = True


def _release_chain_flag(session: Session, *args: Any) -> None:
    session.info.pop("crm_audit_chain_locked", None)


_installed = False


def install_audit_hooks() -> None:
    global _installed
    if _installed:
        return
    event.listen(Session, "before_flush", _snapshot_unloaded_before_values)
    event.listen(Session, "after_flush", _audit_flush)
    event.listen(Session, "after_commit", _release_chain_flag)
    event.listen(Session, "after_soft_rollback", _release_chain_flag)
    _installed = True


# ---- verification -------------------------------------------------------------------------


@dataclass
class ChainReport:
    rows: int
    ok: bool
    first_bad_id: int | None = None
    first_bad_seq: int | None = None
    reason: str | None = None


def verify_chain(connection: Connection, batch: int = 5000) -> ChainReport:
    """Walk the chain in order; report the first row altered, removed or out of place."""
    table = AuditLog.__table__
    result = connection.execution_options(stream_results=True, yield_per=batch).execute(
        select(table).order_by(table.c.seq)
    )
    expected_seq, prev = 1, GENESIS_HASH
    count = 0
    for row in result.mappings():
        count += 1
        data = dict(row)
        if data["seq"] != expected_seq:
            return ChainReport(
                count,
                False,
                data["id"],
                data["seq"],
                f"expected seq {expected_seq}: a row was removed or inserted out of place",
            )
        if data["prev_hash"] != prev:
            return ChainReport(
                count,
                False,
                data["id"],
                data["seq"],
                "its previous-hash does not match the row before it (row removed or inserted)",
            )
        if row_hash(data) != data["row_hash"]:
            return ChainReport(
                count,
                False,
                data["id"],
                data["seq"],
                "its content does not match its hash (row altered)",
            )
        expected_seq, prev = data["seq"] + 1, data["row_hash"]
    return ChainReport(count, True)

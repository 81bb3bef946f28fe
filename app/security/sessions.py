"""Sessions that end on the server: signing out, deactivation and a password change end every
session and bearer token of that user; idle and absolute timeouts end the rest.

Each user has a *session version* (``user_session.version``, 0 until first bumped). A sign-in
on the form stores the version in the signed session cookie, with the sign-in and last-seen
times; a bearer token carries it as the ``sv`` claim. Every request compares: a cookie or token
of an older version (the user signed out somewhere, was deactivated, or changed password), or
a session idle longer than ``CRM_SESSION_IDLE_SECONDS`` or older than
``CRM_SESSION_MAX_SECONDS``, is refused: the screens send the user to the sign-in page, the API
answers 401. Each end is audited (``session ended`` with the reason). The version is read with
the user in the one statement that loads them (``CrmSecurityManager.get_user_by_id``).
"""

from __future__ import annotations

import time
from datetime import datetime

from flask import Flask, current_app, flash, g, has_request_context, jsonify, redirect, request
from flask import session as cookie
from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from flask_login import current_user, logout_user, user_logged_in, user_logged_out
from sqlalchemy import ForeignKey, Integer, event, inspect, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.core.types import UTCDateTime, utcnow

VERSION_KEY, SINCE_KEY, SEEN_KEY = "crm_sv", "crm_since", "crm_seen"
TOUCH_SECONDS = 60
"""How stale the cookie's last-seen time may get before a request rewrites it."""


class UserSession(Model):
    """A user's session version: bumped by signing out, deactivation and a password change."""

    __tablename__ = "user_session"

    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def remember_version(user_id: int, version: int | None) -> None:
    """The version read with the user this request (``get_user_by_id``)."""
    if has_request_context():
        g.setdefault("crm_session_versions", {})[user_id] = int(version or 0)


def version_of(user_id: int) -> int:
    from app.extensions import db

    known = g.get("crm_session_versions", {}) if has_request_context() else {}
    if user_id in known:
        return known[user_id]
    found = db.session.scalar(select(UserSession.version).where(UserSession.user_id == user_id))
    remember_version(user_id, found)
    return int(found or 0)


def _bump(session: Session, user_id: int) -> None:
    row = session.get(UserSession, user_id)
    if row is None:
        session.add(UserSession(user_id=user_id, version=1, changed_at=utcnow()))
    else:
        row.version = (row.version or 0) + 1
        row.changed_at = utcnow()
    if has_request_context():
        g.get("crm_session_versions", {}).pop(user_id, None)


def end_every_session(user_id: int) -> None:
    """Bump the user's version now, in its own transaction: every cookie and token issued
    before stops working."""
    from app.extensions import db

    _bump(db.session, user_id)
    db.session.commit()


def _changed(user: User, name: str) -> bool:
    return inspect(user).attrs[name].history.has_changes()


def _bump_on_deactivation_or_password(session: Session, flush_context, instances) -> None:
    for obj in list(session.dirty):
        if not isinstance(obj, User) or obj.id is None:
            continue
        deactivated = _changed(obj, "active") and not obj.active
        if deactivated or _changed(obj, "password"):
            _bump(session, obj.id)


def _on_login(sender: Flask, user: User) -> None:
    now = int(time.time())
    cookie[VERSION_KEY] = version_of(user.id)
    cookie[SINCE_KEY] = now
    cookie[SEEN_KEY] = now


def _on_logout(sender: Flask, user: User) -> None:
    if g.get("crm_session_ended") or not getattr(user, "is_authenticated", False):
        return  # an ended session signed out by the check below; nothing more to end
    end_every_session(user.id)


def _why_ended(user_id: int) -> str | None:
    if cookie.get(VERSION_KEY) != version_of(user_id):
        return "signed out, deactivated or password changed since this sign-in"
    now = int(time.time())
    since, seen = cookie.get(SINCE_KEY, 0), cookie.get(SEEN_KEY, 0)
    if now - seen > int(current_app.config.get("CRM_SESSION_IDLE_SECONDS", 3600)):
        return "idle too long"
    if now - since > int(current_app.config.get("CRM_SESSION_MAX_SECONDS", 36000)):
        return "signed in too long ago"
    if now - seen > TOUCH_SECONDS:
        cookie[SEEN_KEY] = now
    return None


def _is_api() -> bool:
    return request.path.startswith("/api/")


def install_server_sessions(app: Flask, builder) -> None:
    """Check every signed-in request's session; version the bearer tokens."""
    from app.core.audit import record_event
    from app.extensions import db

    if not event.contains(Session, "before_flush", _bump_on_deactivation_or_password):
        event.listen(Session, "before_flush", _bump_on_deactivation_or_password)
    user_logged_in.connect(_on_login, app)
    user_logged_out.connect(_on_logout, app)

    @app.before_request
    def _end_stale_sessions():
        if request.endpoint == "static" or "_user_id" not in cookie:
            return None
        user = current_user
        if not getattr(user, "is_authenticated", False):
            return None
        reason = _why_ended(user.id)
        if reason is None:
            return None
        g.crm_session_ended = True
        user_id, username = user.id, user.username
        logout_user()
        cookie.clear()
        db.session.rollback()
        record_event("session ended", actor_id=user_id, actor_name=username, detail=reason)
        if _is_api():
            return jsonify(message=f"Not signed in: the session has ended ({reason})."), 401
        flash(f"Your session has ended ({reason}). Please sign in again.", "warning")
        return redirect(builder.get_url_for_login)

    jwt = builder.sm.jwt_manager

    @jwt.additional_claims_loader
    def _version_claim(identity) -> dict:
        try:
            return {VERSION_KEY: version_of(int(identity))}
        except (TypeError, ValueError):
            return {}

    @jwt.user_lookup_error_loader
    def _token_refused(header: dict, payload: dict):
        record_event(
            "session ended",
            actor_name="(bearer token)",
            detail=f"bearer token of user {payload.get('sub')!r} refused: an earlier session "
            f"version or an inactive user ({request.method} {request.path})",
        )
        return (
            jsonify(
                message="Not signed in: the bearer token was revoked (signed out, deactivated "
                "or password changed); sign in again."
            ),
            401,
        )


def token_is_current(payload: dict, user_id: int) -> bool:
    """Whether a bearer token's session version is the user's (read with the user)."""
    return payload.get(VERSION_KEY) == version_of(user_id)

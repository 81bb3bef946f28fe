"""Security events FAB does not hook: logouts and permission denials, sent to the audit log."""

from __future__ import annotations

import logging

from flask import Flask, has_request_context
from flask_appbuilder.const import LOGMSG_ERR_SEC_ACCESS_DENIED
from flask_login import user_logged_out


class PermissionDenialRecorder(logging.Handler):
    """FAB's access decorators log each denial (and only that) on their logger; record it."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg != LOGMSG_ERR_SEC_ACCESS_DENIED or not has_request_context():
            return
        from flask import request

        from app.core.audit import record_event

        try:
            record_event(
                "permission_denied",
                detail=f"{record.getMessage()} ({request.method} {request.path})",
            )
        except Exception:  # never let auditing break the answer; the log line above remains
            logging.getLogger(__name__).exception("could not record a permission denial")


def _record_logout(sender: Flask, user) -> None:
    from app.core.audit import record_event

    if not getattr(user, "is_authenticated", False):
        return  # /logout/ opened with no session (expired, or a second tab): nothing to record
    record_event("logout", actor_id=user.id, actor_name=user.username)


_installed = False


def install_security_event_hooks() -> None:
    global _installed
    if _installed:
        return
    logging.getLogger("flask_appbuilder.security.decorators").addHandler(PermissionDenialRecorder())
    user_logged_out.connect(_record_logout)
    _installed = True

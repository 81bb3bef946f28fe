"""Domain errors: raised by services, turned into 4xx answers by screens and the API."""

from __future__ import annotations

from flask import Flask, g, jsonify, render_template_string, request


class DomainError(Exception):
    """A business rule refused the request; ``field`` names the input at fault, if any."""

    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        if self.field:
            return f"{self.field.replace('_', ' ').capitalize()}: {self.message}"
        return self.message

    def as_json(self) -> dict:
        if self.field:
            return {"message": {self.field: [self.message]}}
        return {"message": self.message}


class FieldError(DomainError):
    """One input is invalid (bad email, malformed phone, too long, ...)."""


class ConflictError(DomainError):
    """The change clashes with existing data (duplicate, already converted, ...); ``existing``
    points at the record it clashes with, e.g. ``{"type": "lead", "id": 12, "url": ...}``."""

    status = 409

    def __init__(
        self, message: str, field: str | None = None, existing: dict | None = None
    ) -> None:
        super().__init__(message, field)
        self.existing = existing

    def as_json(self) -> dict:
        body = super().as_json()
        if self.existing:
            body["existing"] = self.existing
        return body


class PermissionDenied(DomainError):
    status = 403


class ScopeViolation(PermissionDenied):
    """A write would put a row outside the actor's own scope."""


class NotFound(DomainError):
    status = 404


_ERROR_PAGE = """{% extends appbuilder.base_template %}{% block content %}
<div class="alert alert-danger" role="alert"><strong>{{ status }}</strong> {{ message }}</div>
{% endblock %}"""


def register_error_handlers(app: Flask) -> None:
    from flask_wtf.csrf import CSRFError
    from werkzeug.exceptions import RequestEntityTooLarge

    from app.core.audit import REJECTION_RECORDED, record_event, record_rejection

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError):
        # A form or API write without our page's token: another site's page, or a stale tab.
        record_event(
            "permission_denied",
            detail=f"refused without a valid CSRF token: {error.description} "
            f"({request.method} {request.path})",
        )
        if request.path.startswith("/api/") or wants_json():
            message = f"CSRF token missing or invalid: {error.description}"
            return jsonify(message=message), 400
        message = (
            f"The form could not be accepted: {error.description} "
            "Reload the page and send it again."
        )
        return _error_page(app, 400, message)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(error: RequestEntityTooLarge):
        # Refused from the Content-Length header, before the body is read.
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        message = (
            f"The upload is too large: {request.content_length or 0:,} bytes; "
            f"the limit is {limit:,} bytes."
        )
        record_rejection(request.blueprint or "request", message)
        if request.path.startswith("/api/"):
            return jsonify(message={"file": [message]}), 413
        return _error_page(app, 413, message)

    @app.errorhandler(DomainError)
    def _domain_error(error: DomainError):
        if error.status in (400, 422) and not g.get(REJECTION_RECORDED):
            record_rejection(request.blueprint or "request", str(error))
        if request.path.startswith("/api/"):
            return jsonify(error.as_json()), error.status
        return _error_page(app, error.status, str(error))


def wants_json() -> bool:
    """A page's script asking for JSON (a board's move), rather than a browser for a page."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _error_page(app: Flask, status: int, message: str):
    page = render_template_string(
        _ERROR_PAGE, appbuilder=app.appbuilder, status=status, message=message
    )
    return page, status

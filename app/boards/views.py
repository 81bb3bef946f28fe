"""The board screens and their move endpoint.

A move is a POST (with the page's CSRF token, like every form) to ``/<board>/move/<id>`` and
calls the very service the record's form or workflow calls for that change, so a move refused
there is refused here with the same message, and an allowed one writes the same audit row.
The board's script asks for JSON; a plain form post (no script) is answered with a message on
the board instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flask import flash, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.security.decorators import has_access_api
from sqlalchemy.exc import DataError, IntegrityError

from app.boards.columns import CARDS_PER_COLUMN, Column, application_columns, label_of, lead_columns
from app.core.audit import record_rejection
from app.core.crud import filtered_list_url, integrity_refusal
from app.core.errors import DomainError, FieldError, wants_json
from app.extensions import db
from app.leads.models import LEAD_STATUSES, Lead
from app.leads.services import change_lead_status
from app.lending.models import STAGES, LoanApplication
from app.lending.services import move_stage
from app.lending.views import APPLICATION_PERMISSIONS

LEAD_PERMISSIONS = ["can_read", "can_write", "can_delete"]
"""The Lead resource's permissions, as its list screen declares them (FAB keeps one set per
resource, so every screen of it declares the same)."""


class BoardView(BaseView):
    """A board of one resource's rows in columns; subclasses say which rows and which move."""

    default_view = "board"
    method_permission_name = {"board": "read", "move": "write"}
    template = "crm/board.html"
    title = ""
    field = ""
    """The form field naming the column a card moves to."""
    record_type = ""
    """The audit log's name for refused moves."""
    list_view = ""
    """Endpoint of the list the "more" links open, filtered by the column."""
    list_column = ""
    model: type

    keys: Sequence[str] = ()

    def columns(self, more_url: Callable[[str], str]) -> list[Column]:
        raise NotImplementedError

    def apply_move(self, pk: int, to: str, reason: str | None) -> str:
        """Make the move through the desk's service; the message to show. Raises DomainError."""
        raise NotImplementedError

    def _more_url(self) -> Callable[[str], str]:
        view = next(v for v in self.appbuilder.baseviews if v.endpoint == self.list_view)
        return lambda key: filtered_list_url(view, {self.list_column: key})

    @expose("/")
    @has_access
    def board(self):
        columns = self.columns(self._more_url())
        return self.render_template(
            self.template,
            title=self.title,
            columns=columns,
            move_url=url_for(f"{self.endpoint}.move", pk=0).rsplit("/", 1)[0],
            field=self.field,
            cards_per_column=CARDS_PER_COLUMN,
            can_move=self.appbuilder.sm.has_access("can_write", self.class_permission_name),
        )

    @expose("/move/<int:pk>", methods=["POST"])
    @has_access_api
    def move(self, pk: int):
        to = (request.form.get(self.field) or "").strip()
        if to not in self.keys:
            message = (
                f"{label_of(self.field)}: choose one of {', '.join(self.keys)}"
                f"{f', not {to[:40]!r}' if to else ''}."
            )
            record_rejection(self.record_type, message)
            return self._answer(400, message, pk)
        reason = request.form.get("reason")
        try:
            message = self.apply_move(pk, to, reason)
            db.session.commit()
        except (DomainError, IntegrityError, DataError) as exc:
            db.session.rollback()
            refusal = exc if isinstance(exc, DomainError) else self._database_refusal(exc)
            record_rejection(self.record_type, str(refusal))
            return self._answer(refusal.status, str(refusal), pk)
        return self._answer(200, message, pk, to)

    def _database_refusal(self, exc: IntegrityError | DataError) -> DomainError:
        """A constraint or a column's limit that a rule did not catch first, in words."""
        if isinstance(exc, IntegrityError):
            return integrity_refusal(exc, self.model)
        return FieldError("is too large or not of the right kind.", "reason")

    def _answer(self, status: int, message: str, pk: int, column: str | None = None):
        if wants_json():
            body: dict[str, Any] = {"message": message, "id": pk}
            if column is not None:
                body[self.field] = column
            return jsonify(body), status
        flash(
            message if status == 200 else f"Not moved: {message}",
            "success" if status == 200 else "danger",
        )
        return redirect(url_for(f"{self.endpoint}.board"))


class LeadBoardView(BoardView):
    """Leads by status: the lead form's rules (``change_lead_status``), conversion included."""

    route_base = "/leadboard"
    class_permission_name = "Lead"
    base_permissions = LEAD_PERMISSIONS
    title = "Lead board"
    field = "status"
    record_type = "lead"
    list_view = "LeadView"
    list_column = "status"

    model = Lead
    keys = LEAD_STATUSES

    def columns(self, more_url):
        return lead_columns(more_url)

    def apply_move(self, pk, to, reason):
        lead = change_lead_status(pk, to, reason)
        if to == "converted":
            return f"Converted: {lead.full_name} is now client #{lead.converted_client_id}."
        return f"{lead.full_name} is now {label_of(lead.status).lower()}."


class ApplicationBoardView(BoardView):
    """Loan applications by stage: the application page's stage move (``move_stage``)."""

    route_base = "/applicationboard"
    class_permission_name = "LoanApplication"
    base_permissions = APPLICATION_PERMISSIONS
    title = "Application board"
    field = "stage"
    record_type = "loan_application"
    list_view = "LoanApplicationView"
    list_column = "stage"

    model = LoanApplication
    keys = STAGES

    def columns(self, more_url):
        return application_columns(more_url)

    def apply_move(self, pk, to, reason):
        application = move_stage(pk, to, reason)
        return f"{application.reference} is now {application.stage}."

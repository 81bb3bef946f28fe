"""Accounts screens: the chart of accounts, the journal (with reversals) and the trial balance.

Entries are never edited or deleted here; a wrong entry is cancelled by a reversing one.
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from app.core.audit import record_rejection
from app.core.crud import CrmSQLAInterface, NoButtonsForMissingRoutes, ServiceModelView
from app.core.errors import ConflictError, DomainError, NotFound
from app.core.forms import (
    choice_field,
    display_choice,
    display_money,
    display_timestamp,
    display_yes_no,
)
from app.core.types import utcnow
from app.core.validators import parse_date
from app.extensions import db
from app.ledger import services
from app.ledger.models import ACCOUNT_CLASSES, Account, JournalEntry, JournalLine

READ, WRITE, DELETE = "read", "write", "delete"
LEDGER_PERMISSIONS = ["can_read", "can_write", "can_delete"]
"""Every ledger screen declares the same set: views sharing a permission name must, or FAB's
permission sync tries to remove the others' permissions on every run."""


def display_entry_number(value: int | None) -> str:
    return "" if value is None else f"JE-{value}"


def display_optional(value: object) -> str:
    return "" if value is None else str(value)


def display_entry_link(entry: JournalEntry | None) -> Markup | str:
    if entry is None:
        return ""
    href = url_for("JournalView.show", pk=entry.id)
    return Markup('<a href="{}">JE-{}</a>').format(href, entry.id)


class AccountInterface(CrmSQLAInterface):
    """An account saved by someone else with the same code in the meantime is a refusal with
    a message, like any other clash (not FAB's raw database error)."""

    def add(self, item: Account, commit: bool = True) -> None:
        try:
            super().add(item, commit)
        except IntegrityError as exc:  # FAB has rolled back
            refusal = ConflictError(f"account {item.code} already exists.", "code")
            record_rejection("ledger_account", str(refusal))
            g.ledger_refusal = refusal
            raise refusal from exc


class AccountView(NoButtonsForMissingRoutes, ServiceModelView):
    """The chart of accounts: everyone with the ledger reads it; Admin adds accounts and may
    delete one nothing was ever posted to. Codes are never edited (the desks post by code)."""

    datamodel = AccountInterface(Account)
    class_permission_name = "Ledger"
    method_permission_name = {"list": READ, "show": READ, "add": WRITE, "delete": DELETE}
    exclude_route_methods = {"edit", "download", "action", "action_post"}
    base_permissions = LEDGER_PERMISSIONS
    prepare = staticmethod(services.prepare_account)
    show_template = "crm/show.html"

    list_title = "Chart of accounts"
    show_title = "Account"
    add_title = "Add an account"
    list_columns = ["code", "name", "account_class", "currency", "active"]
    show_columns = ["code", "name", "account_class", "currency", "active", "created_at"]
    add_columns = ["code", "name", "account_class"]
    search_columns = ["code", "name", "account_class", "active"]
    order_columns = ["code", "name", "account_class"]
    base_order = ("code", "asc")
    page_size = 100
    label_columns = {"account_class": "Class", "created_at": "Created (UTC)"}
    description_columns = {
        "code": "Letters, digits, dots and dashes; unique. The desks post by code.",
    }
    formatters_columns = {
        "account_class": display_choice,
        "active": display_yes_no,
        "created_at": display_timestamp,
    }
    add_form_extra_fields = {"account_class": choice_field("Class", ACCOUNT_CLASSES)}

    def pre_add(self, item: Account) -> None:
        try:
            super().pre_add(item)
        except DomainError as exc:
            g.ledger_refusal = exc
            raise

    def pre_delete(self, item: Account) -> None:
        try:
            services.check_account_removable(item)
        except DomainError as exc:
            db.session.rollback()
            record_rejection("ledger_account", str(exc))
            raise

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        """FAB's add form; a refused account shows the form again (with the message) as a
        4xx answer instead of FAB's redirect."""
        g.ledger_refusal = None
        widget = self._add()
        refusal = g.pop("ledger_refusal", None)
        if refusal is not None:
            widget = self._get_add_widget(form=self.add_form.refresh(), exclude_cols=[])
            status = refusal.status
        elif not widget:
            return self.post_add_redirect()
        else:
            status = 422 if request.method == "POST" else 200
        page = self.render_template(self.add_template, title=self.add_title, widgets=widget)
        return page, status


class JournalInterface(CrmSQLAInterface):
    """Journal lists load each page's lines (for the totals) and reversed entries at once."""

    def apply_all(self, query, *args, **kwargs):
        query = super().apply_all(query, *args, **kwargs)
        return query.options(selectinload(JournalEntry.lines), joinedload(JournalEntry.reverses))


class JournalView(NoButtonsForMissingRoutes, ServiceModelView):
    """Journal entries, newest first; an entry's page lists its lines. Nothing is edited or
    deleted: Admin cancels an entry with a reversing one (with a reason)."""

    datamodel = JournalInterface(JournalEntry)
    class_permission_name = "Ledger"
    method_permission_name = {"list": READ, "show": READ, "reverse": WRITE}
    exclude_route_methods = {"add", "edit", "delete", "download", "action", "action_post"}
    base_permissions = LEDGER_PERMISSIONS
    show_template = "crm/journal_show.html"

    list_title = "Journal"
    show_title = "Journal entry"
    list_columns = ["id", "entry_date", "memo", "source_type", "source_id", "total", "reverses"]
    show_columns = [
        "id",
        "entry_date",
        "memo",
        "source_type",
        "source_id",
        "total",
        "reverses",
        "created_by",
        "created_at",
    ]
    search_columns = ["entry_date", "memo", "source_type", "source_id"]
    order_columns = ["id", "entry_date"]
    base_order = ("entry_date", "desc")
    label_columns = {
        "id": "Entry",
        "entry_date": "Date",
        "source_type": "Source",
        "source_id": "Source #",
        "reverses": "Reverses",
        "created_by": "Posted by",
        "created_at": "Posted (UTC)",
    }
    formatters_columns = {
        "id": display_entry_number,
        "total": display_money,
        "source_type": lambda value: (value or "").replace("_", " "),
        "source_id": display_optional,
        "reverses": display_entry_link,
        "created_by": display_optional,
        "created_at": display_timestamp,
    }

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        """FAB's detail page plus the entry's lines, who reversed it, and the reverse form."""
        try:
            entry_id = int(pk)
        except ValueError:
            abort(404)
        entry = db.session.scalar(
            select(JournalEntry)
            .where(JournalEntry.id == entry_id)
            .options(selectinload(JournalEntry.lines).joinedload(JournalLine.account))
        )
        if entry is None:
            abort(404)
        reversed_by = db.session.scalar(
            select(JournalEntry.id).where(JournalEntry.reverses_id == entry.id)
        )
        return self.render_template(
            self.show_template,
            pk=entry_id,
            title=self.show_title,
            widgets=self._show(entry_id),
            related_views=self._related_views,
            entry=entry,
            reversed_by=reversed_by,
            today=utcnow().date().isoformat(),
        )

    @expose("/reverse/<int:pk>", methods=["POST"])
    @has_access
    def reverse(self, pk: int):
        """Cancel the entry with its mirror image; a refusal is flashed and audited."""
        try:
            entry_date = parse_date(request.form.get("entry_date"), "entry_date") or utcnow().date()
            mirror = services.reverse(pk, entry_date, request.form.get("reason", ""))
            db.session.commit()
        except NotFound:
            db.session.rollback()
            abort(404)
        except (DomainError, IntegrityError) as exc:
            db.session.rollback()
            if isinstance(exc, IntegrityError):  # reversed by someone else at the same moment
                exc = ConflictError("this entry was reversed by someone else just now.")
            record_rejection("journal_entry", f"JE-{pk} not reversed: {exc}")
            flash(f"JE-{pk} not reversed: {exc}", "danger")
            return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        flash(f"JE-{pk} reversed by JE-{mirror.id}.", "success")
        return redirect(url_for(f"{self.endpoint}.show", pk=mirror.id))


class TrialBalanceView(BaseView):
    """Debits, credits and balance per account with the totals, as of a date; exports as CSV,
    XLSX or PDF."""

    route_base = "/trialbalance"
    class_permission_name = "Ledger"
    method_permission_name = {"report": READ, "export": READ}
    base_permissions = LEDGER_PERMISSIONS
    default_view = "report"

    @expose("/")
    @has_access
    def report(self):
        raw = request.args.get("as_of", "")
        try:
            report = services.trial_balance_report(services.parse_as_of(raw))
        except DomainError as exc:
            page = self.render_template(
                "crm/trial_balance.html",
                title="Trial balance",
                report=None,
                as_of=raw,
                error=str(exc),
            )
            return page, 400
        return self.render_template(
            "crm/trial_balance.html",
            title="Trial balance",
            report=report,
            as_of=report.as_of.isoformat() if report.as_of else "",
            error=None,
        )

    @expose("/export.csv")
    @has_access
    def export(self):
        """The CSV export's old address: the shared report export (XLSX and PDF too, from the
        screen's buttons or ``/reports/trial-balance/export/<fmt>``)."""
        from app.exports.services import export_report_response

        return export_report_response("trial-balance", "csv", request.args)

"""KYC screens: cases (prepared by agents), the approval queue (Compliance), the KYC report."""

from __future__ import annotations

import json

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from sqlalchemy import select
from wtforms import PasswordField
from wtforms.validators import Optional

from app.core.audit import record_rejection
from app.core.crud import CrmSQLAInterface, ServiceModelView
from app.core.errors import DomainError, NotFound
from app.core.forms import display_choice, display_timestamp
from app.documents import services as document_services
from app.documents.views import file_response
from app.extensions import db
from app.kyc import services
from app.kyc.models import KycCase
from app.security.roles import VIEW_METHOD_ACTIONS
from app.security.scoping import current_actor

PREVIEWABLE = ("application/pdf", "image/png", "image/jpeg")


def _secret_input(label: str) -> PasswordField:
    return PasswordField(
        label,
        validators=[Optional()],
        description="Stored encrypted. Leave blank to keep the current value.",
    )


class KycCaseView(ServiceModelView):
    """Cases per client: opened and prepared by the client's agent, submitted for review."""

    datamodel = CrmSQLAInterface(KycCase)
    class_permission_name = "KycCase"
    method_permission_name = {**VIEW_METHOD_ACTIONS, "submit": "write"}
    prepare = staticmethod(services.prepare_case)
    show_template = "crm/kyc_case_show.html"

    list_title = "KYC cases"
    list_columns = ["client", "status", "submissions", "submitted_at", "reviewer", "reviewed_by"]
    show_columns = [
        "client",
        "status",
        "pan_masked",
        "aadhaar_masked",
        "abn",
        "acn",
        "registration_number",
        "bank_account_masked",
        "ifsc",
        "iban",
        "rejection_reason",
        "prepared_by",
        "submitted_by",
        "submitted_at",
        "reviewer",
        "reviewed_by",
        "reviewed_at",
    ]
    add_columns = [
        "client",
        "pan",
        "aadhaar",
        "abn",
        "acn",
        "registration_number",
        "bank_account",
        "ifsc",
        "iban",
    ]
    edit_columns = add_columns
    search_columns = ["client", "status", "reviewer", "submitted_at"]
    order_columns = ["status", "submitted_at"]
    base_order = ("id", "desc")
    label_columns = {
        "pan_masked": "PAN",
        "aadhaar_masked": "Aadhaar",
        "bank_account_masked": "Bank account",
        "pan": "PAN",
        "abn": "ABN",
        "acn": "ACN",
        "ifsc": "IFSC",
        "iban": "IBAN",
        "submitted_at": "Submitted (UTC)",
        "reviewed_at": "Reviewed (UTC)",
    }
    formatters_columns = {
        "status": display_choice,
        "submitted_at": display_timestamp,
        "reviewed_at": display_timestamp,
    }
    add_form_extra_fields = {
        "pan": _secret_input("PAN"),
        "aadhaar": _secret_input("Aadhaar"),
        "bank_account": _secret_input("Bank account"),
    }
    edit_form_extra_fields = add_form_extra_fields

    def _case_context(self, pk: int) -> dict:
        case = db.session.scalar(select(KycCase).where(KycCase.id == pk))
        if case is None:
            return {}
        documents = services.document_status(case)
        return {
            "case": case,
            "documents": documents,
            "checks": json.loads(case.check_results or "[]"),
            "problems": services.problems(case, status=documents),
        }

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        """FAB's detail page plus the checklist, checks and history of the case."""
        try:
            context = self._case_context(int(pk))
        except ValueError:
            abort(404)
        self.extra_args = {**self.extra_args, **context}
        return super().show(pk)

    @expose("/submit/<int:pk>", methods=["POST"])
    @has_access
    def submit(self, pk: int):
        """Send the case to Compliance (again, after a rejection)."""
        try:
            _, found = services.submit_case(pk)
            db.session.commit()
        except NotFound:
            abort(404)
        except DomainError as exc:
            db.session.rollback()
            record_rejection("kyc_case", str(exc))
            flash(str(exc), "danger")
        else:
            if found:
                flash(
                    "Submitted for review; the reviewer will see these problems: "
                    + "; ".join(found),
                    "warning",
                )
            else:
                flash("Submitted for review.", "success")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))


def _queue_item(case: KycCase, actor) -> dict:
    documents = services.document_status(case)
    return {
        "case": case,
        "documents": documents,
        "checks": json.loads(case.check_results or "[]"),
        "problems": services.problems(case, status=documents),
        "conflict": services.four_eyes_conflict(case, actor.user_id if actor else None),
    }


class KycQueueView(BaseView):
    """Compliance's approval queue: cases in review, oldest first, everything needed to decide
    on one page, documents previewed in place."""

    route_base = "/kycqueue"
    class_permission_name = "KycQueue"
    method_permission_name = {
        "queue": "read",
        "preview": "read",
        "approve": "write",
        "reject": "write",
    }
    default_view = "queue"

    @expose("/")
    @has_access
    def queue(self):
        actor = current_actor()
        cases = services.review_queue()
        return self.render_template(
            "crm/kyc_queue.html",
            title="KYC approval queue",
            cases=[_queue_item(case, actor) for case in cases],
            previewable=PREVIEWABLE,
        )

    @expose("/preview/<int:document_id>")
    @has_access
    def preview(self, document_id: int):
        """A document shown inside the queue page (PDF and images), audited like a download."""
        try:
            download = document_services.open_document(document_id, inline=True)
        except NotFound:
            abort(404)
        if download.document.content_type not in PREVIEWABLE:
            abort(415)
        if download.url:
            return redirect(download.url)
        return file_response(download, inline=True)

    @expose("/approve/<int:pk>", methods=["POST"])
    @has_access
    def approve(self, pk: int):
        return self._review(
            pk,
            lambda: services.approve_case(pk),
            lambda case: (f"Case #{pk} approved: {case.client.name} is KYC verified.", "success"),
            "approved",
        )

    @expose("/reject/<int:pk>", methods=["POST"])
    @has_access
    def reject(self, pk: int):
        return self._review(
            pk,
            lambda: services.reject_case(pk, request.form.get("reason")),
            lambda case: (f"Case #{pk} rejected and sent back to its preparer.", "info"),
            "rejected",
        )

    def _review(self, pk: int, decide, done, verb: str):
        """Run a review decision in its own transaction; a refusal is flashed and audited."""
        try:
            case = decide()
            db.session.commit()
        except NotFound:
            abort(404)
        except DomainError as exc:
            db.session.rollback()
            record_rejection("kyc_case", str(exc))
            flash(f"Case #{pk} not {verb}: {exc}", "danger")
        else:
            flash(*done(case))
        return redirect(url_for(f"{self.endpoint}.queue"))


def _suitability_flags(builder):
    """The brokerage desk's suitability flags (count, latest), for those who may read trades."""
    from app.brokerage.services import suitability_flags

    if not builder.sm.has_access("can_read", "Trade"):
        return None
    return suitability_flags()


class KycReportView(BaseView):
    """Counts by status and branch, cases waiting per reviewer, documents expiring; exports as
    CSV, XLSX or PDF."""

    route_base = "/kycreport"
    class_permission_name = "KycReport"
    method_permission_name = {"report": "read", "export": "read"}
    default_view = "report"

    @expose("/")
    @has_access
    def report(self):
        from app.kyc.report import KYC_STATUSES, build_report

        return self.render_template(
            "crm/kyc_report.html",
            title="KYC report",
            report=build_report(),
            statuses=KYC_STATUSES,
            suitability=_suitability_flags(self.appbuilder),
        )

    @expose("/export.csv")
    @has_access
    def export(self):
        """The CSV export's old address: the shared report export (XLSX and PDF too, from the
        screen's buttons or ``/reports/kyc-report/export/<fmt>``)."""
        from app.exports.services import export_report_response

        return export_report_response("kyc-report", "csv", request.args)

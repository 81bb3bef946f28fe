"""Lending screens: the application screen (one submit, every party), the application page
with its tabs and actions, loan products and brokers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import PasswordField
from wtforms.validators import Optional

from app.clients.models import Client
from app.core.audit import record_rejection
from app.core.crud import CrmSQLAInterface, ServiceModelView, run_action
from app.core.errors import DomainError, NotFound
from app.core.forms import choice_field, display_choice, display_money, display_timestamp
from app.core.once import once_per_form
from app.core.related_lists import RelatedList, related_lists
from app.documents.models import DOC_TYPES, Document
from app.documents.services import open_document
from app.documents.views import file_response
from app.extensions import db
from app.ledger.services import entries_for
from app.lending import services
from app.lending.forms import ApplicationForm, PartyForm
from app.lending.models import (
    EDITABLE_COLUMNS,
    FEE_TYPES,
    LOAN_TYPES,
    OPEN_STAGES,
    PAYMENT_METHODS,
    Broker,
    LoanApplication,
    LoanFee,
    LoanInstalment,
    LoanNote,
    LoanParty,
    LoanProduct,
    LoanProductFee,
    LoanRepayment,
    LoanStageEvent,
)
from app.security.roles import DECIDE, REPAY, VIEW_METHOD_ACTIONS
from app.security.scoping import current_actor

APPLICATION_PERMISSIONS = ["can_read", "can_write", "can_decide", "can_repay"]
"""Shared by every screen of the LoanApplication resource (FAB needs them identical)."""


# ---- the application screen -----------------------------------------------------------------


def _fill_choices(form: ApplicationForm) -> None:
    """Drop-downs list only what the signed-in user may pick (queries are row-scoped)."""
    from flask_appbuilder.security.sqla.models import User

    from app.org.services import active_users_with_role

    actor = current_actor()
    products = db.session.scalars(
        select(LoanProduct).where(LoanProduct.active.is_(True)).order_by(LoanProduct.name)
    )
    form.product_id.choices = [("", "—")] + [
        (
            str(p.id),
            f"{p.name} ({p.min_rate}–{p.max_rate}%, {p.min_term_months}–"
            f"{p.max_term_months} months)",
        )
        for p in products
    ]
    own_broker = services.broker_of(actor)
    if own_broker is not None:
        officers = own_broker.bdms
        form.broker_id.choices = [(str(own_broker.id), own_broker.company)]
    else:
        officers = db.session.scalars(
            select(User)
            .where(User.id.in_(active_users_with_role("LoanOfficer")))
            .order_by(User.first_name)
        ).all()
        brokers = db.session.scalars(
            select(Broker).where(Broker.active.is_(True)).order_by(Broker.company)
        )
        form.broker_id.choices = [("", "— none (direct)")] + [
            (str(b.id), b.company) for b in brokers
        ]
    form.bdm_id.choices = [("", "—")] + [
        (str(u.id), f"{u.first_name} {u.last_name}") for u in officers
    ]
    clients = db.session.scalars(select(Client).order_by(Client.id.desc()).limit(200))
    form.client_id.choices = [("", "—")] + [(str(c.id), repr(c)) for c in clients]


def _party_payloads(form: ApplicationForm) -> list[dict[str, Any]]:
    return [
        {name: field.data for name, field in entry.form._fields.items()} for entry in form.parties
    ]


def _place_errors(form: ApplicationForm, errors: dict[str, str]) -> list[str]:
    """Put each message on its input; return those with no input to show them at the top."""
    loose = []
    for key, message in errors.items():
        if key.startswith("parties-") and key.count("-") >= 2:
            _, index, name = key.split("-", 2)
            entries = form.parties.entries
            if index.isdigit() and int(index) < len(entries) and name in entries[int(index)].form:
                field = entries[int(index)].form[name]
                field.errors = [*field.errors, message]
                continue
        elif key in form:
            form[key].errors = [*form[key].errors, message]
            continue
        loose.append(f"{key.replace('_', ' ')}: {message}")
    return loose


class NewApplicationView(BaseView):
    """The application screen: the loan, the people on it, signature, valuer and QS, in one
    submit. Everything is checked first; any problem re-shows the form with each message
    beside its input and nothing saved."""

    route_base = "/loans"
    class_permission_name = "LoanApplication"
    method_permission_name = {"new": "write"}
    base_permissions = APPLICATION_PERMISSIONS
    default_view = "new"

    @expose("/new", methods=["GET", "POST"])
    @has_access
    def new(self):
        form = ApplicationForm()
        _fill_choices(form)
        loose: list[str] = []
        if request.method == "POST":
            csrf = getattr(form, "csrf_token", None)
            if not form.validate_on_submit() and csrf is not None and csrf.errors:
                abort(400, description="The form expired; reload the page and submit again.")
            data = {
                name: form[name].data
                for name in (*form.LOAN, *form.PEOPLE, *form.SIGNATURE, *form.VALUER, *form.QS)
            }
            try:
                submission = services.submit_application(data, _party_payloads(form))
                db.session.commit()
            except services.FormErrors as exc:
                db.session.rollback()
                record_rejection("loan_application", str(exc))
                loose = _place_errors(form, exc.errors)
                flash(
                    f"The application was not saved: {len(exc.errors)} problem(s) to fix.", "danger"
                )
            except DomainError as exc:
                db.session.rollback()
                record_rejection("loan_application", str(exc))
                loose = [str(exc)]
            else:
                application = submission.application
                flash(
                    f"{application.reference} submitted with {len(submission.parties)} parties.",
                    "success",
                )
                return redirect(url_for("LoanApplicationView.show", pk=application.id))
        template = PartyForm(prefix="parties-__index__-")
        return self.render_template(
            "crm/loan_application_new.html",
            title="New loan application",
            form=form,
            party_template=template,
            loose_errors=loose,
        )


# ---- the application page ---------------------------------------------------------------------


class LoanApplicationView(ServiceModelView):
    datamodel = CrmSQLAInterface(LoanApplication)
    class_permission_name = "LoanApplication"
    method_permission_name = {
        **VIEW_METHOD_ACTIONS,
        "stage": "write",
        "repayment": REPAY,
        "note": "write",
        "fee": DECIDE,
        "pay_fee": REPAY,
        "payment_link": REPAY,
        "upload": "write",
        "file": "read",
    }
    base_permissions = APPLICATION_PERMISSIONS
    prepare = staticmethod(services.prepare_edit)
    show_template = "crm/loan_application_show.html"

    list_title = "Loan applications"
    list_columns = [
        "reference",
        "stage",
        "amount",
        "product",
        "bdm",
        "broker",
        "branch",
        "arrears_bucket",
        "stage_changed_at",
    ]
    show_columns = [
        "reference",
        "stage",
        "amount",
        "term_months",
        "interest_rate",
        "repayment_frequency",
        "application_type",
        "product",
        "purpose",
        "estimated_settlement_date",
        "branch",
        "bdm",
        "broker",
        "client",
        "signed_by",
        "signature_date",
        "valuer_company",
        "valuer_contact",
        "valuer_phone",
        "valuer_email",
        "qs_company",
        "qs_contact",
        "qs_phone",
        "qs_email",
        "settled_on",
        "instalment_amount",
        "days_past_due",
        "arrears_bucket",
        "created_by",
        "created_at",
    ]
    edit_columns = EDITABLE_COLUMNS
    search_columns = [
        "reference",
        "stage",
        "bdm",
        "broker",
        "branch",
        "arrears_bucket",
        "created_at",
        "stage_changed_at",
    ]
    order_columns = ["reference", "stage", "amount", "stage_changed_at"]
    base_order = ("id", "desc")
    label_columns = {
        "bdm": "BDM",
        "qs_company": "QS company",
        "qs_contact": "QS contact",
        "qs_phone": "QS phone",
        "qs_email": "QS e-mail",
        "valuer_email": "Valuer e-mail",
        "interest_rate": "Interest rate (%)",
        "stage_changed_at": "Stage since (UTC)",
        "created_at": "Created (UTC)",
    }
    formatters_columns = {
        "stage": display_choice,
        "repayment_frequency": display_choice,
        "application_type": display_choice,
        "amount": display_money,
        "instalment_amount": display_money,
        "stage_changed_at": display_timestamp,
        "created_at": display_timestamp,
    }

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        return redirect(url_for("NewApplicationView.new"))

    def _get_show_widget(self, pk, item, **kwargs):
        """The page of the application FAB read: also everything its tabs show."""
        self.extra_args = {**self.extra_args, **_tabs(item)}
        return super()._get_show_widget(pk, item, **kwargs)

    def _act(self, pk: int, action: Callable[[], Any], done: Callable[[Any], str]):
        """Run one action on an application in its own transaction; refusals are flashed
        (with what to fix) and audited, and nothing is half-written."""
        result, refusal = run_action(action, "loan_application")
        if refusal:
            flash(f"Not done: {refusal}", "danger")
        else:
            flash(done(result), "success")
        return redirect(
            url_for(f"{self.endpoint}.show", pk=pk, _anchor=request.form.get("tab", ""))
        )

    @expose("/stage/<int:pk>", methods=["POST"])
    @has_access
    def stage(self, pk: int):
        form = request.form
        return self._act(
            pk,
            lambda: services.move_stage(
                pk, form.get("to_stage", ""), form.get("note"), form.get("settled_on")
            ),
            lambda app: f"{app.reference} is now {app.stage}.",
        )

    @expose("/repayment/<int:pk>", methods=["POST"])
    @has_access
    def repayment(self, pk: int):
        return self._act(
            pk,
            lambda: once_per_form(
                "loan repayment", lambda: services.record_repayment(pk, request.form)
            ),
            lambda r: (
                f"Repayment of {r.amount:,.2f} recorded: interest {r.interest_part:,.2f}, "
                f"principal {r.principal_part:,.2f}."
            ),
        )

    @expose("/payment-link/<int:pk>", methods=["POST"])
    @has_access
    def payment_link(self, pk: int):
        """A link the client pays the next instalment still due with (docs/payments.md)."""
        from app.payments.services import link_for_instalment

        return self._act(
            pk,
            lambda: link_for_instalment(pk),
            lambda link: f"Payment link for {link.amount:,.2f} {link.currency}: {link.url}",
        )

    @expose("/note/<int:pk>", methods=["POST"])
    @has_access
    def note(self, pk: int):
        return self._act(
            pk,
            lambda: services.add_note(pk, request.form.get("body"), request.form.get("remind_on")),
            lambda note: (
                "Note added" + (f"; reminder on {note.remind_on}." if note.remind_on else ".")
            ),
        )

    @expose("/fee/<int:pk>", methods=["POST"])
    @has_access
    def fee(self, pk: int):
        return self._act(
            pk,
            lambda: services.add_fee(pk, request.form, _invoice()),
            lambda fee: f"{fee.fee_type.capitalize()} fee of {fee.amount:,.2f} charged.",
        )

    @expose("/fee/<int:pk>/pay/<int:fee_id>", methods=["POST"])
    @has_access
    def pay_fee(self, pk: int, fee_id: int):
        return self._act(
            pk,
            lambda: services.pay_fee(pk, fee_id, request.form.get("paid_on")),
            lambda fee: f"{fee.fee_type.capitalize()} fee of {fee.amount:,.2f} paid.",
        )

    @expose("/upload/<int:pk>", methods=["POST"])
    @has_access
    def upload(self, pk: int):
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash("Not done: choose a file to upload.", "danger")
            return redirect(url_for(f"{self.endpoint}.show", pk=pk, _anchor="documents"))
        return self._act(
            pk,
            lambda: services.upload_document(
                pk, request.form.get("doc_type", ""), upload.filename, upload.read()
            ),
            lambda document: f"Uploaded {document!r}.",
        )

    @expose("/file/<int:document_id>")
    @has_access
    def file(self, document_id: int):
        """An application's document, through the same audited path as every download."""
        try:
            download = open_document(document_id)
        except NotFound:
            abort(404)
        if download.document.loan_application_id is None:
            abort(404)
        if download.url:
            return redirect(download.url)
        return file_response(download)


def _invoice() -> tuple[str | None, bytes] | None:
    upload = request.files.get("invoice")
    if upload is None or not upload.filename:
        return None
    return upload.filename, upload.read()


def _tabs(application: LoanApplication) -> dict[str, Any]:
    """Everything the application page's tabs show: its lists in one statement and its ledger
    in another, whatever its size."""
    actor = current_actor()
    key = application.id
    parties, notes, documents, fees, instalments, repayments, events = related_lists(
        RelatedList(
            LoanParty,
            LoanParty.application_id == key,
            (LoanParty.id,),
        ),
        RelatedList(
            LoanNote,
            LoanNote.application_id == key,
            (LoanNote.id.desc(),),
            (joinedload(LoanNote.author),),
        ),
        RelatedList(
            Document,
            Document.loan_application_id == key,
            (Document.doc_type, Document.version.desc()),
        ),
        RelatedList(LoanFee, LoanFee.application_id == key, (LoanFee.id,)),
        RelatedList(
            LoanInstalment,
            LoanInstalment.application_id == key,
            (LoanInstalment.number,),
        ),
        RelatedList(
            LoanRepayment,
            LoanRepayment.application_id == key,
            (LoanRepayment.id.desc(),),
        ),
        RelatedList(
            LoanStageEvent,
            LoanStageEvent.application_id == key,
            (LoanStageEvent.id,),
        ),
    )
    return {
        "application": application,
        "parties": parties,
        "notes": notes,
        "documents": documents,
        "fees": fees,
        "instalments": instalments,
        "repayments": repayments,
        "entries": entries_for(application),
        "events": events,
        "next_stages": services.next_stages(application, actor),
        "may_repay": services.may(actor, REPAY) and application.stage == "settled",
        "may_decide": services.may(actor, DECIDE),
        "may_write": services.may(actor, "write"),
        "doc_types": DOC_TYPES,
        "fee_types": FEE_TYPES,
        "payment_methods": PAYMENT_METHODS,
        "open_stage": application.stage in OPEN_STAGES,
        "money": display_money,
    }


# ---- products and brokers ------------------------------------------------------------------


class LoanProductFeeView(ServiceModelView):
    datamodel = SQLAInterface(LoanProductFee)
    class_permission_name = "LoanProduct"
    list_columns = ["product", "fee_type", "amount"]
    add_columns = edit_columns = ["product", "fee_type", "amount"]
    prepare = staticmethod(services.prepare_fee_template)
    add_form_extra_fields = {"fee_type": choice_field("Fee type", FEE_TYPES)}
    edit_form_extra_fields = add_form_extra_fields
    formatters_columns = {"amount": display_money, "fee_type": display_choice}


class LoanProductView(ServiceModelView):
    datamodel = CrmSQLAInterface(LoanProduct)
    class_permission_name = "LoanProduct"
    prepare = staticmethod(services.prepare_product)
    related_views = [LoanProductFeeView]
    list_columns = [
        "name",
        "loan_type",
        "min_rate",
        "max_rate",
        "min_term_months",
        "max_term_months",
        "min_amount",
        "max_amount",
        "active",
    ]
    add_columns = edit_columns = list_columns
    show_columns = list_columns
    search_columns = ["name", "loan_type", "active"]
    label_columns = {
        "min_rate": "Min rate (%)",
        "max_rate": "Max rate (%)",
        "min_term_months": "Min term (months)",
        "max_term_months": "Max term (months)",
    }
    add_form_extra_fields = {"loan_type": choice_field("Type", LOAN_TYPES)}
    edit_form_extra_fields = add_form_extra_fields
    formatters_columns = {
        "min_amount": display_money,
        "max_amount": display_money,
        "loan_type": display_choice,
    }


class BrokerView(ServiceModelView):
    datamodel = CrmSQLAInterface(Broker)
    class_permission_name = "Broker"
    prepare = staticmethod(services.prepare_broker)
    list_columns = ["company", "contact_name", "email", "phone", "branch", "active"]
    show_columns = [
        "company",
        "contact_name",
        "email",
        "phone",
        "branch",
        "user",
        "bdms",
        "commission_account_masked",
        "active",
    ]
    add_columns = [
        "company",
        "contact_name",
        "email",
        "phone",
        "branch",
        "user",
        "bdms",
        "commission_account",
        "active",
    ]
    edit_columns = add_columns
    search_columns = ["company", "contact_name", "email", "branch", "active"]
    label_columns = {
        "user": "Sign-in (role Broker)",
        "bdms": "BDMs",
        "commission_account_masked": "Commission account",
        "commission_account": "Commission account",
    }
    add_form_extra_fields = {
        "commission_account": PasswordField(
            "Commission account",
            validators=[Optional()],
            description="Stored encrypted. Leave blank to keep the current value.",
        )
    }
    edit_form_extra_fields = add_form_extra_fields

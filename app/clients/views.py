"""Client screens: identifiers shown masked, typed into write-only inputs, revealed on request."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from sqlalchemy import select
from wtforms import PasswordField
from wtforms.validators import Optional

from app.clients import services
from app.clients.models import (
    CLIENT_CHANNELS,
    CLIENT_STATUSES,
    CLIENT_TYPES,
    CONTACT_KINDS,
    IDENTIFIER_FIELDS,
    MASKED_IDENTIFIER_FIELDS,
    PROFILE_FIELDS,
    Client,
    ClientContact,
    ClientDirector,
)
from app.clients.risk import QUESTIONS, assess_risk
from app.clients.timeline import TIMELINE_SOURCES, client_timeline, timeline_query
from app.core.audit import record_rejection
from app.core.crud import CrmSQLAInterface, ServiceModelView
from app.core.errors import DomainError, NotFound
from app.core.forms import MARKETING_CONSENT, choice_field, display_choice, optional_relation_field
from app.core.validators import form_validator
from app.documents.views import DocumentView
from app.extensions import db
from app.leads.models import INVESTMENT_CAPACITY_BANDS
from app.leads.views import InteractionView
from app.org import services as org_services
from app.security.roles import VIEW_METHOD_ACTIONS


def _identifier_input(label: str, field: str) -> PasswordField:
    """An input that never shows the stored value; left blank on edit, the value is kept."""
    return PasswordField(
        label,
        validators=[Optional(), form_validator(lambda v: services.check_identifier(field, v))],
        description="Stored encrypted. Leave blank to keep the current value.",
    )


def _business_number_input(label: str, field: str):
    from wtforms import StringField

    return StringField(
        label,
        validators=[Optional(), form_validator(lambda v: services.check_business_number(field, v))],
    )


class ClientContactView(ServiceModelView):
    datamodel = CrmSQLAInterface(ClientContact)
    class_permission_name = "ClientContact"
    prepare = staticmethod(services.prepare_contact)

    list_title = "Contacts"
    list_columns = ["client", "kind", "label", "value", "preferred"]
    show_columns = ["client", "kind", "label", "value", "preferred", "created_at"]
    add_columns = ["client", "kind", "label", "value", "preferred"]
    edit_columns = add_columns
    search_columns = ["client", "kind", "value", "preferred"]
    formatters_columns = {"kind": display_choice}
    add_form_extra_fields = {"kind": choice_field("Type", CONTACT_KINDS)}
    edit_form_extra_fields = add_form_extra_fields


class ClientDirectorView(ServiceModelView):
    datamodel = CrmSQLAInterface(ClientDirector)
    class_permission_name = "ClientDirector"
    prepare = staticmethod(services.prepare_director)

    list_title = "Directors"
    list_columns = ["client", "full_name", "position", "email", "phone", "appointed_on"]
    show_columns = [*list_columns, "date_of_birth", "created_at"]
    add_columns = [
        "client",
        "full_name",
        "position",
        "date_of_birth",
        "email",
        "phone",
        "appointed_on",
    ]
    edit_columns = add_columns
    search_columns = ["client", "full_name", "email", "phone"]


class ClientView(ServiceModelView):
    datamodel = CrmSQLAInterface(Client)
    class_permission_name = "Client"
    method_permission_name = {
        **VIEW_METHOD_ACTIONS,
        "reveal": "reveal",
        "timeline": "read",
        "risk": "write",
        "preferences": "write",
    }
    prepare = staticmethod(services.prepare_client)
    show_template = "crm/client_show.html"
    related_views = [ClientContactView, ClientDirectorView, InteractionView, DocumentView]

    list_title = "Clients"
    list_columns = [
        "name",
        "client_type",
        "email",
        "phone",
        "segment",
        "status",
        "kyc_status",
        "relationship_manager",
        "branch",
    ]
    show_columns = [
        *PROFILE_FIELDS,
        *MASKED_IDENTIFIER_FIELDS,
        "segment",
        "risk_profile",
        "risk_score",
        "risk_assessed_at",
        "preferred_channel",
        "marketing_consent",
        "marketing_opt_out_at",
        "status",
        "kyc_status",
        "relationship_manager",
        "branch",
        "created_at",
    ]
    add_columns = [
        *PROFILE_FIELDS,
        *IDENTIFIER_FIELDS,
        "marketing_consent",
        "status",
        "relationship_manager",
        "branch",
    ]
    edit_columns = add_columns
    search_columns = [
        "name",
        "email",
        "phone",
        "segment",
        "risk_profile",
        "status",
        "kyc_status",
        "marketing_consent",
        "relationship_manager",
        "branch",
    ]
    order_columns = ["name", "segment", "status", "kyc_status"]
    label_columns = {
        "pan_masked": "PAN",
        "aadhaar_masked": "Aadhaar",
        "tax_file_number_masked": "Tax file number",
        "pan": "PAN",
        "kyc_status": "KYC status",
        "abn": "ABN",
        "acn": "ACN",
        "risk_assessed_at": "Risk assessed (UTC)",
    }
    description_columns = {
        "investment_capacity": "Investable assets; sets the segment.",
        "abn": "Australian Business Number (11 digits), checked.",
        "acn": "Australian Company Number (9 digits), checked.",
    }
    formatters_columns = {
        "client_type": display_choice,
        "status": display_choice,
        "kyc_status": display_choice,
        "segment": display_choice,
        "risk_profile": display_choice,
        "investment_capacity": display_choice,
        "preferred_channel": display_choice,
    }
    add_form_extra_fields = {
        "client_type": choice_field("Client type", CLIENT_TYPES),
        "status": choice_field("Status", CLIENT_STATUSES),
        "investment_capacity": choice_field(
            "Investment capacity", INVESTMENT_CAPACITY_BANDS, required=False
        ),
        "abn": _business_number_input("ABN", "abn"),
        "acn": _business_number_input("ACN", "acn"),
        "pan": _identifier_input("PAN", "pan"),
        "aadhaar": _identifier_input("Aadhaar", "aadhaar"),
        "tax_file_number": _identifier_input("Tax file number", "tax_file_number"),
        "branch": optional_relation_field(
            "Branch", org_services.assignable_branches, "(my branch)"
        ),
        "relationship_manager": optional_relation_field(
            "Relationship manager", org_services.assignable_staff, "(me, when I am an agent)"
        ),
        "marketing_consent": MARKETING_CONSENT,
    }
    edit_form_extra_fields = add_form_extra_fields
    edit_exclude_columns = ["kyc_status"]
    """KYC status changes only through a KYC case."""

    @expose("/reveal/<int:pk>/<string:field>", methods=["POST"])
    @has_access
    def reveal(self, pk: int, field: str):
        """Show one identifier in full, once, to Compliance or Admin; the reveal is audited."""
        try:
            value = services.reveal_identifier(pk, field)
        except DomainError as exc:
            flash(str(exc), "danger")
        else:
            flash(f"{services.IDENTIFIERS[field][2]}: {value}", "info")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))

    @expose("/timeline/<int:pk>")
    @has_access
    def timeline(self, pk: int):
        """Everything that happened with this client, newest first; filter by kind, page back."""
        try:
            kinds, before, _ = timeline_query(
                request.args.getlist("kind"), request.args.get("before"), None
            )
            client, events = client_timeline(pk, kinds, before)
        except NotFound:
            abort(404)
        except DomainError as exc:
            abort(400, description=str(exc))
        return self.render_template(
            "crm/client_timeline.html",
            client=client,
            events=events,
            kinds=kinds or set(),
            sources=[(kind, source.label) for kind, source in TIMELINE_SOURCES.items()],
            older=events[-1].at.isoformat() if len(events) >= 50 else None,
            title=f"Timeline: {client.name}",
        )

    @expose("/risk/<int:pk>", methods=["GET", "POST"])
    @has_access
    def risk(self, pk: int):
        """The risk-profile questionnaire; its score sets the client's risk profile."""
        client = db.session.scalar(select(Client).where(Client.id == pk))
        if client is None:
            abort(404)
        error, status = None, 200
        answers = {q.key: request.form.get(q.key, "") for q in QUESTIONS}
        if request.method == "POST":
            try:
                assessment = assess_risk(pk, answers)
                db.session.commit()
            except DomainError as exc:
                db.session.rollback()
                record_rejection("risk_assessment", str(exc))
                error, status = str(exc), exc.status
            else:
                flash(f"Risk profile: {assessment.profile} (score {assessment.score}).", "success")
                return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        page = self.render_template(
            "crm/client_risk.html",
            client=client,
            questions=QUESTIONS,
            answers=answers,
            error=error,
            title=f"Risk questionnaire: {client.name}",
        )
        return page, status

    @expose("/preferences/<int:pk>", methods=["GET", "POST"])
    @has_access
    def preferences(self, pk: int):
        """The channels the client allows and the one they prefer."""
        from app.comms.services import preferences_for

        client = db.session.scalar(select(Client).where(Client.id == pk))
        if client is None:
            abort(404)
        error, status = None, 200
        if request.method == "POST":
            try:
                services.save_client_preferences(
                    pk,
                    email="email" in request.form,
                    sms="sms" in request.form,
                    preferred_channel=request.form.get("preferred_channel", ""),
                )
                db.session.commit()
            except DomainError as exc:
                db.session.rollback()
                record_rejection("notification_preference", str(exc))
                error, status = str(exc), exc.status
            else:
                flash("Communication preferences saved.", "success")
                return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        page = self.render_template(
            "crm/client_preferences.html",
            client=client,
            prefs=preferences_for(client_id=pk),
            channels=CLIENT_CHANNELS,
            error=error,
            title=f"Communication preferences: {client.name}",
        )
        return page, status

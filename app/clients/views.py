"""Client screens: identifiers shown masked, typed into write-only inputs, revealed on request."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_appbuilder import expose, has_access
from wtforms import PasswordField
from wtforms.validators import Optional

from app.clients import services
from app.clients.models import (
    CLIENT_STATUSES,
    CLIENT_TYPES,
    IDENTIFIER_FIELDS,
    MASKED_IDENTIFIER_FIELDS,
    PROFILE_FIELDS,
    Client,
)
from app.core.crud import CrmSQLAInterface, ServiceModelView
from app.core.errors import DomainError
from app.core.forms import choice_field, display_choice, optional_relation_field
from app.core.validators import form_validator
from app.documents.views import DocumentView
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


class ClientView(ServiceModelView):
    datamodel = CrmSQLAInterface(Client)
    class_permission_name = "Client"
    method_permission_name = {**VIEW_METHOD_ACTIONS, "reveal": "reveal"}
    prepare = staticmethod(services.prepare_client)
    show_template = "crm/client_show.html"
    related_views = [InteractionView, DocumentView]

    list_title = "Clients"
    list_columns = [
        "name",
        "client_type",
        "email",
        "phone",
        "status",
        "kyc_status",
        "relationship_manager",
        "branch",
    ]
    show_columns = [
        *PROFILE_FIELDS,
        *MASKED_IDENTIFIER_FIELDS,
        "status",
        "kyc_status",
        "relationship_manager",
        "branch",
        "created_at",
    ]
    add_columns = [*PROFILE_FIELDS, *IDENTIFIER_FIELDS, "status", "relationship_manager", "branch"]
    edit_columns = add_columns
    search_columns = [
        "name",
        "email",
        "phone",
        "status",
        "kyc_status",
        "relationship_manager",
        "branch",
    ]
    order_columns = ["name", "status", "kyc_status"]
    label_columns = {
        "pan_masked": "PAN",
        "aadhaar_masked": "Aadhaar",
        "tax_file_number_masked": "Tax file number",
        "pan": "PAN",
        "kyc_status": "KYC status",
    }
    formatters_columns = {
        "client_type": display_choice,
        "status": display_choice,
        "kyc_status": display_choice,
    }
    add_form_extra_fields = {
        "client_type": choice_field("Client type", CLIENT_TYPES),
        "status": choice_field("Status", CLIENT_STATUSES),
        "pan": _identifier_input("PAN", "pan"),
        "aadhaar": _identifier_input("Aadhaar", "aadhaar"),
        "tax_file_number": _identifier_input("Tax file number", "tax_file_number"),
        "branch": optional_relation_field(
            "Branch", org_services.assignable_branches, "(my branch)"
        ),
        "relationship_manager": optional_relation_field(
            "Relationship manager", org_services.assignable_staff, "(me, when I am an agent)"
        ),
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

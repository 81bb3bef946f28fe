"""REST API for leads and interactions under /api/v1/, scoped like the screens."""

from __future__ import annotations

from flask_appbuilder.api import expose, protect, safe
from sqlalchemy import select

from app.core.crud import CrmSQLAInterface, ServiceModelRestApi, json_body
from app.core.errors import DomainError, FieldError
from app.extensions import db
from app.leads import services
from app.leads.conversion import convert_lead
from app.leads.merging import merge_leads, near_duplicates
from app.leads.models import Interaction, Lead
from app.security.roles import API_METHOD_ACTIONS

LEAD_FIELDS = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "source",
    "status",
    "lost_reason",
    "investment_capacity",
    "assigned_agent_id",
    "branch_id",
    "notes",
    "next_follow_up_at",
    "marketing_consent",
    "campaign_id",
]


class LeadApi(ServiceModelRestApi):
    resource_name = "lead"
    datamodel = CrmSQLAInterface(Lead)
    class_permission_name = "Lead"
    method_permission_name = {
        **API_METHOD_ACTIONS,
        "convert": "write",
        "merge": "write",
        "near_duplicates": "read",
    }
    prepare = staticmethod(services.prepare_lead)
    allow_browser_login = True

    list_columns = ["id", *LEAD_FIELDS, "score", "created_at"]
    show_columns = [
        "id",
        *LEAD_FIELDS,
        "score",
        "score_breakdown",
        "converted_client_id",
        "created_at",
        "updated_at",
    ]
    add_columns = [f for f in LEAD_FIELDS if f != "lost_reason"]
    edit_columns = LEAD_FIELDS
    search_columns = [
        "first_name",
        "last_name",
        "email",
        "phone",
        "status",
        "source",
        "assigned_agent_id",
        "branch_id",
        "campaign_id",
    ]
    order_columns = [
        "id",
        "first_name",
        "last_name",
        "status",
        "score",
        "created_at",
        "next_follow_up_at",
    ]

    @expose("/<int:pk>/convert", methods=["POST"])
    @protect()
    @safe
    def convert(self, pk: int):
        """Convert a qualified lead into a client, in one transaction.
        ---
        post:
          responses:
            201: {description: the new client's id}
            404: {$ref: '#/components/responses/404'}
            409: {description: already converted, lost, or not qualified}
        """
        try:
            client = convert_lead(pk)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            return self.response(exc.status, **exc.as_json())
        return self.response(201, client_id=client.id, url=f"/clientview/show/{client.id}")

    @expose("/<int:pk>/merge", methods=["POST"])
    @protect()
    @safe
    def merge(self, pk: int):
        """Merge another lead into this one (``{"other_id": N}``); the other is removed.
        ---
        post:
          responses:
            200: {description: the kept lead}
            404: {$ref: '#/components/responses/404'}
            409: {description: a lead is not open}
            422: {$ref: '#/components/responses/422'}
        """
        other = json_body().get("other_id")
        try:
            if not isinstance(other, int):
                raise FieldError("must be the id of the lead to merge into this one.", "other_id")
            lead = merge_leads(pk, other)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            return self.response(exc.status, **exc.as_json())
        return self.response(200, id=lead.id, result=self.show_model_schema.dump(lead))

    @expose("/<int:pk>/near_duplicates", methods=["GET"])
    @protect()
    @safe
    def near_duplicates(self, pk: int):
        """Leads that look like this one (similar name with the same phone digits or domain).
        ---
        get:
          responses:
            200: {description: candidates with similarity and reason}
            404: {$ref: '#/components/responses/404'}
        """
        lead = db.session.scalar(select(Lead).where(Lead.id == pk))
        if lead is None:
            return self.response_404()
        return self.response(
            200,
            result=[
                {
                    "id": d.lead.id,
                    "name": d.lead.full_name,
                    "similarity": d.similarity,
                    "reason": d.reason,
                }
                for d in near_duplicates(lead)
            ],
        )

    def pre_add(self, item: Lead) -> None:
        """A lead created through the API is an `api` lead unless the caller says otherwise."""
        item.source = item.source or "api"
        super().pre_add(item)


class InteractionApi(ServiceModelRestApi):
    resource_name = "interaction"
    datamodel = CrmSQLAInterface(Interaction)
    class_permission_name = "Interaction"
    prepare = staticmethod(services.prepare_interaction)
    allow_browser_login = True

    list_columns = [
        "id",
        "lead_id",
        "client_id",
        "kind",
        "occurred_at",
        "outcome",
        "body",
        "author_id",
    ]
    show_columns = list_columns
    add_columns = ["lead_id", "client_id", "kind", "occurred_at", "outcome", "body"]
    edit_columns = ["kind", "occurred_at", "outcome", "body"]
    search_columns = ["lead_id", "client_id", "kind", "author_id"]
    order_columns = ["id", "occurred_at"]

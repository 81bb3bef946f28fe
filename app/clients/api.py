"""Client API: identifiers are written in full and read back masked; reveal is its own call."""

from __future__ import annotations

from flask import request
from flask_appbuilder.api import expose, protect, safe

from app.clients import services
from app.clients.models import (
    IDENTIFIER_FIELDS,
    MASKED_IDENTIFIER_FIELDS,
    PROFILE_FIELDS,
    Client,
    ClientContact,
    ClientDirector,
    RiskAssessment,
)
from app.clients.risk import assess_risk
from app.clients.timeline import client_timeline, timeline_query
from app.core.audit import record_rejection
from app.core.crud import (
    CrmSQLAInterface,
    ReadOnlyRestApi,
    ServiceModelRestApi,
    json_body,
    readable_columns,
)
from app.core.errors import DomainError, FieldError
from app.extensions import db
from app.security.roles import API_METHOD_ACTIONS

READ_COLUMNS = [
    "id",
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
    "relationship_manager_id",
    "branch_id",
    "created_at",
]
WRITE_COLUMNS = [
    *PROFILE_FIELDS,
    *IDENTIFIER_FIELDS,
    "marketing_consent",
    "status",
    "relationship_manager_id",
    "branch_id",
]


class ClientApi(ServiceModelRestApi):
    resource_name = "client"
    datamodel = CrmSQLAInterface(Client)
    class_permission_name = "Client"
    method_permission_name = {
        **API_METHOD_ACTIONS,
        "reveal": "reveal",
        "timeline": "read",
        "risk_profile": "write",
        "preferences": "write",
    }
    prepare = staticmethod(services.prepare_client)
    allow_browser_login = True

    list_columns = READ_COLUMNS
    show_columns = READ_COLUMNS
    add_columns = WRITE_COLUMNS
    edit_columns = WRITE_COLUMNS
    search_columns = [
        "name",
        "email",
        "phone",
        "segment",
        "risk_profile",
        "status",
        "kyc_status",
        "relationship_manager_id",
        "branch_id",
    ]
    order_columns = ["id", "name", "status", "created_at"]

    @expose("/<int:pk>/reveal", methods=["POST"])
    @protect()
    @safe
    def reveal(self, pk: int):
        """Reveal one identifier in full (Compliance and Admin); audited.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    field: {type: string, enum: [pan, aadhaar, tax_file_number]}
          responses:
            200: {description: the identifier in full}
            403: {$ref: '#/components/responses/403'}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        field = json_body().get("field")
        try:
            value = services.reveal_identifier(pk, field)
        except DomainError as exc:
            return self.response(exc.status, **exc.as_json())
        return self.response(200, field=field, value=value)

    @expose("/<int:pk>/timeline", methods=["GET"])
    @protect()
    @safe
    def timeline(self, pk: int):
        """The client's events, newest first.
        ---
        get:
          parameters:
          - {in: query, name: kind, schema: {type: string}, description: repeat to filter}
          - {in: query, name: before, schema: {type: string, format: date-time}}
          - {in: query, name: limit, schema: {type: integer, maximum: 200}}
          responses:
            200: {description: the events}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        try:
            kinds, before, limit = timeline_query(
                request.args.getlist("kind"), request.args.get("before"), request.args.get("limit")
            )
            _, events = client_timeline(pk, kinds, before, limit)
        except DomainError as exc:
            return self.response(exc.status, **exc.as_json())
        return self.response(
            200,
            result=[
                {
                    "at": e.at.isoformat(),
                    "kind": e.kind,
                    "title": e.title,
                    "detail": e.detail,
                    "url": e.url,
                    "who": e.who,
                }
                for e in events
            ],
        )

    @expose("/<int:pk>/risk_profile", methods=["POST"])
    @protect()
    @safe
    def risk_profile(self, pk: int):
        """Score a risk questionnaire (question key -> answer key) and set the risk profile.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema: {type: object, properties: {answers: {type: object}}}
          responses:
            201: {description: the profile and score}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        answers = json_body().get("answers")
        try:
            if not isinstance(answers, dict):
                raise FieldError("send the answers as an object of question -> answer.", "answers")
            assessment = assess_risk(pk, {str(k): str(v) for k, v in answers.items()})
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            record_rejection("risk_assessment", str(exc))
            return self.response(exc.status, **exc.as_json())
        return self.response(
            201, id=assessment.id, profile=assessment.profile, score=assessment.score
        )

    @expose("/<int:pk>/preferences", methods=["PUT"])
    @protect()
    @safe
    def preferences(self, pk: int):
        """The channels the client allows and the preferred one.
        ---
        put:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    email: {type: boolean}
                    sms: {type: boolean}
                    preferred_channel: {type: string, enum: [email, sms]}
          responses:
            200: {description: saved}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        body = json_body()
        try:
            client = services.save_client_preferences(
                pk,
                email=bool(body.get("email")),
                sms=bool(body.get("sms")),
                preferred_channel=str(body.get("preferred_channel", "")),
            )
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            record_rejection("notification_preference", str(exc))
            return self.response(exc.status, **exc.as_json())
        return self.response(200, preferred_channel=client.preferred_channel)


class ClientContactApi(ServiceModelRestApi):
    resource_name = "clientcontact"
    datamodel = CrmSQLAInterface(ClientContact)
    class_permission_name = "ClientContact"
    prepare = staticmethod(services.prepare_contact)
    allow_browser_login = True
    list_columns = ["id", "client_id", "kind", "label", "value", "preferred", "created_at"]
    show_columns = list_columns
    add_columns = ["client_id", "kind", "label", "value", "preferred"]
    edit_columns = ["kind", "label", "value", "preferred"]
    search_columns = ["client_id", "kind", "value", "preferred"]


class ClientDirectorApi(ServiceModelRestApi):
    resource_name = "clientdirector"
    datamodel = CrmSQLAInterface(ClientDirector)
    class_permission_name = "ClientDirector"
    prepare = staticmethod(services.prepare_director)
    allow_browser_login = True
    list_columns = [
        "id",
        "client_id",
        "full_name",
        "position",
        "date_of_birth",
        "email",
        "phone",
        "appointed_on",
    ]
    show_columns = list_columns
    add_columns = list_columns[1:]
    edit_columns = list_columns[2:]
    search_columns = ["client_id", "full_name"]


class RiskAssessmentApi(ReadOnlyRestApi):
    """Every risk questionnaire a client answered (the newest sets the profile); written by
    ``POST /api/v1/client/<id>/risk_profile``."""

    resource_name = "riskassessment"
    datamodel = CrmSQLAInterface(RiskAssessment)
    class_permission_name = "Client"
    base_permissions = ["can_read", "can_write", "can_delete", "can_reveal"]
    list_columns = show_columns = readable_columns(RiskAssessment)
    search_columns = ["client_id", "profile"]
    base_order = ("id", "desc")

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
)
from app.core.crud import CrmSQLAInterface, ServiceModelRestApi
from app.core.errors import DomainError
from app.security.roles import API_METHOD_ACTIONS

READ_COLUMNS = [
    "id",
    *PROFILE_FIELDS,
    *MASKED_IDENTIFIER_FIELDS,
    "status",
    "kyc_status",
    "relationship_manager_id",
    "branch_id",
    "created_at",
]
WRITE_COLUMNS = [
    *PROFILE_FIELDS,
    *IDENTIFIER_FIELDS,
    "status",
    "relationship_manager_id",
    "branch_id",
]


class ClientApi(ServiceModelRestApi):
    resource_name = "client"
    datamodel = CrmSQLAInterface(Client)
    class_permission_name = "Client"
    method_permission_name = {**API_METHOD_ACTIONS, "reveal": "reveal"}
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
        field = (request.get_json(silent=True) or {}).get("field")
        try:
            value = services.reveal_identifier(pk, field)
        except DomainError as exc:
            return self.response(exc.status, **exc.as_json())
        return self.response(200, field=field, value=value)

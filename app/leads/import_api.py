"""REST API for lead imports under /api/v1/leadimport/: upload (multipart), status and report,
import the valid rows, or discard. The same services as the Import leads screen."""

from __future__ import annotations

from flask import Response, current_app, request
from flask_appbuilder.api import ModelRestApi, expose, protect, safe
from flask_wtf.csrf import validate_csrf
from wtforms.validators import ValidationError

from app.core.audit import record_rejection
from app.core.crud import CrmSQLAInterface
from app.core.errors import DomainError
from app.extensions import db
from app.leads import imports
from app.leads.models import LeadImport
from app.security.roles import API_METHOD_ACTIONS


class LeadImportApi(ModelRestApi):
    resource_name = "leadimport"
    datamodel = CrmSQLAInterface(LeadImport)
    class_permission_name = "LeadImport"
    method_permission_name = {**API_METHOD_ACTIONS, "import_rows": "write", "discard": "write"}
    include_route_methods = {"get_list", "get", "info", "post", "import_rows", "discard"}
    allow_browser_login = True

    list_columns = [
        "id",
        "file_name",
        "status",
        "total_rows",
        "processed_rows",
        "valid_rows",
        "invalid_rows",
        "duplicate_rows",
        "imported_rows",
        "created_by_id",
        "branch_id",
        "created_at",
    ]
    show_columns = list_columns
    add_columns = ["file_name"]  # unused: uploads are multipart (see ``post``)
    edit_columns = ["file_name"]
    search_columns = ["status", "file_name", "created_by_id", "branch_id"]
    order_columns = ["id", "created_at", "status"]

    @expose("/", methods=["POST"])
    @protect()
    @safe
    def post(self) -> Response:
        """Upload a CSV or XLSX file (multipart field ``file``); its rows are then checked.
        ---
        post:
          requestBody:
            content:
              multipart/form-data:
                schema: {type: object, properties: {file: {type: string, format: binary}}}
          responses:
            202: {description: accepted; poll GET /api/v1/leadimport/<id> for the report}
            400: {$ref: '#/components/responses/400'}
            422: {$ref: '#/components/responses/422'}
        """
        refused = self._refuse_cross_site_form()
        if refused is not None:
            return refused
        upload = request.files.get("file")
        if upload is None:
            return self._refuse(
                DomainError("send the file as the multipart/form-data field 'file'.", "file"),
                status=400,
            )
        try:
            lead_import = imports.upload_import(upload.filename, upload.read())
            db.session.commit()
        except DomainError as exc:
            return self._refuse(exc)
        import_id = lead_import.id
        imports.start_check(lead_import)
        lead_import = db.session.get(LeadImport, import_id)
        return self.response(
            202,
            id=import_id,
            status=lead_import.status,
            url=f"/api/v1/leadimport/{import_id}",
        )

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @safe
    def get(self, pk: int, **kwargs) -> Response:
        """An import's status, progress, counts and per-row problems.
        ---
        get:
          responses:
            200: {description: status, processed_rows of total_rows, counts, problems}
            404: {$ref: '#/components/responses/404'}
        """
        try:
            lead_import = imports.find_import(pk)
        except DomainError:
            return self.response_404()
        return self.response(
            200,
            **imports.import_status(lead_import),
            problems=imports.import_problems(lead_import),
        )

    @expose("/<int:pk>/import", methods=["POST"])
    @protect()
    @safe
    def import_rows(self, pk: int) -> Response:
        """Import the valid rows of a checked import (all of them in one transaction, or none).
        ---
        post:
          responses:
            202: {description: importing; poll GET /api/v1/leadimport/<id>}
            404: {$ref: '#/components/responses/404'}
            409: {description: the import is not checked (already imported, discarded, ...)}
        """
        return self._decide(pk, imports.request_import, imports.start_import)

    @expose("/<int:pk>/discard", methods=["POST"])
    @protect()
    @safe
    def discard(self, pk: int) -> Response:
        """Import nothing and close the import.
        ---
        post:
          responses:
            200: {description: discarded}
            404: {$ref: '#/components/responses/404'}
            409: {description: the import is being checked or imported, or is closed}
        """
        return self._decide(pk, imports.discard_import, None)

    def _decide(self, pk: int, decide, start) -> Response:
        refused = self._refuse_cross_site_form()
        if refused is not None:
            return refused
        try:
            lead_import = decide(pk)
            db.session.commit()
        except DomainError as exc:
            return self._refuse(exc)
        if start is None:
            return self.response(200, **imports.import_status(lead_import))
        start(lead_import)
        return self.response(202, **imports.import_status(db.session.get(LeadImport, pk)))

    def _refuse(self, exc: DomainError, status: int | None = None) -> Response:
        db.session.rollback()
        if exc.status != 404:
            record_rejection(LeadImport.__tablename__, str(exc))
        return self.response(status or exc.status, **exc.as_json())

    def _refuse_cross_site_form(self) -> Response | None:
        """The API is exempt from CSRF because it takes JSON; these endpoints take a multipart
        form or no body at all, which another site could post with the browser's session
        cookie. A session-signed-in caller must send the CSRF token (``X-CSRFToken``); a bearer
        token cannot be sent by another site, so it needs none."""
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            return None
        if not current_app.config.get("WTF_CSRF_ENABLED", True):
            return None
        try:
            validate_csrf(request.headers.get("X-CSRFToken") or request.form.get("csrf_token"))
        except ValidationError as exc:
            return self.response(400, message=f"CSRF token missing or invalid: {exc}")
        return None

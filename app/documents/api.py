"""Document API: list and read metadata, upload (multipart), download (audited)."""

from __future__ import annotations

from datetime import date

from flask import redirect, request
from flask_appbuilder.api import expose, protect, safe

from app.core.crud import CrmSQLAInterface, ServiceModelRestApi
from app.core.errors import DomainError, FieldError, NotFound
from app.documents import services
from app.documents.models import Document
from app.documents.views import file_response
from app.extensions import db
from app.security.roles import API_METHOD_ACTIONS

COLUMNS = [
    "id",
    "doc_type",
    "version",
    "client_id",
    "lead_id",
    "original_name",
    "content_type",
    "size_bytes",
    "sha256",
    "expires_on",
    "uploaded_by_id",
    "uploaded_at",
]


def _optional_int(name: str) -> int | None:
    raw = request.form.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise FieldError("must be a whole number.", name) from exc


def _optional_date(name: str) -> date | None:
    raw = request.form.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise FieldError("must be a date like 2027-03-31.", name) from exc


class DocumentApi(ServiceModelRestApi):
    resource_name = "document"
    datamodel = CrmSQLAInterface(Document)
    class_permission_name = "Document"
    method_permission_name = {**API_METHOD_ACTIONS, "upload": "write", "download": "read"}
    base_permissions = ["can_read", "can_write"]
    # Documents are immutable and only created through ``upload`` (which checks the bytes):
    # FAB's generic create/edit/delete would let a writer forge or rewrite a row's
    # storage key, content type, checksum or size without any file behind it.
    exclude_route_methods = {"post", "put", "delete"}
    allow_browser_login = True
    list_columns = COLUMNS
    show_columns = COLUMNS
    search_columns = ["doc_type", "client_id", "lead_id", "expires_on"]
    order_columns = ["id", "uploaded_at", "expires_on", "version"]

    @expose("/upload", methods=["POST"])
    @protect()
    @safe
    def upload(self):
        """Upload a document (multipart form: file, doc_type, client_id or lead_id, expires_on).
        ---
        post:
          requestBody:
            content:
              multipart/form-data:
                schema:
                  type: object
                  properties:
                    file: {type: string, format: binary}
                    doc_type: {type: string}
                    client_id: {type: integer}
                    lead_id: {type: integer}
                    expires_on: {type: string, format: date}
          responses:
            201: {description: the stored document}
            422: {$ref: '#/components/responses/422'}
        """
        upload = request.files.get("file")
        try:
            if upload is None:
                raise FieldError("is required (multipart field 'file').", "file")
            owner = services.find_owner(_optional_int("client_id"), _optional_int("lead_id"))
            document = services.upload_document(
                owner,
                request.form.get("doc_type", ""),
                upload.filename,
                upload.read(),
                _optional_date("expires_on"),
            )
            services.commit_upload()
        except DomainError as exc:
            db.session.rollback()
            return self.response(exc.status, **exc.as_json())
        return self.response(201, id=document.id, result=self.show_model_schema.dump(document))

    @expose("/<int:pk>/download", methods=["GET"])
    @protect()
    @safe
    def download(self, pk: int):
        """Download a document: a redirect to a short-lived URL (S3) or the file itself.
        ---
        get:
          responses:
            200: {description: the file}
            302: {description: redirect to a presigned URL}
            404: {$ref: '#/components/responses/404'}
        """
        try:
            download = services.open_document(pk)
        except NotFound:
            return self.response_404()
        except DomainError as exc:
            return self.response(exc.status, **exc.as_json())
        if download.url:
            return redirect(download.url)
        return file_response(download)

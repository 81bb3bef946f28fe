"""Document screens: the list, an upload page, and a permission-checked, audited download."""

from __future__ import annotations

from io import BytesIO

from flask import abort, flash, redirect, request, send_file, url_for
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.fieldwidgets import DatePickerWidget, Select2Widget
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, SelectField
from wtforms.validators import InputRequired, Optional

from app.clients.models import Client
from app.core.crud import CrmSQLAInterface, NoFileDownloadMixin, search_by_number_fields
from app.core.errors import DomainError, NotFound
from app.core.forms import display_choice, optional_relation_field
from app.core.localtime import LocalTimeColumnsMixin
from app.documents import services
from app.documents.models import DOC_TYPES, Document
from app.exports.lists import ExportableListMixin
from app.extensions import db
from app.leads.models import Lead
from app.security.roles import VIEW_METHOD_ACTIONS


class UploadForm(FlaskForm):
    client = optional_relation_field(
        "Client", lambda: db.session.query(Client).order_by(Client.name), "—"
    )
    lead = optional_relation_field(
        "Lead", lambda: db.session.query(Lead).order_by(Lead.last_name), "—"
    )
    doc_type = SelectField(
        "Document type",
        choices=[(t, display_choice(t)) for t in DOC_TYPES],
        validators=[InputRequired()],
        widget=Select2Widget(),
    )
    expires_on = DateField("Expires on", validators=[Optional()], widget=DatePickerWidget())
    file = FileField(
        "File",
        validators=[FileRequired()],
        render_kw={"accept": ".pdf,.png,.jpg,.jpeg,.docx,.xlsx"},
    )


class DocumentView(LocalTimeColumnsMixin, ExportableListMixin, NoFileDownloadMixin, ModelView):
    datamodel = CrmSQLAInterface(Document, list_relations=("client", "lead", "uploaded_by"))

    def __init__(self, **kwargs):
        # a lead or client is searched by its number: a drop-down of every one would not fit
        self.search_form_extra_fields = search_by_number_fields(
            self.datamodel, self.search_columns, self.label_columns
        )
        super().__init__(**kwargs)

    class_permission_name = "Document"
    # "delete" is mapped to write (nobody holds can_delete here) so that whoever may upload is
    # told why there is no delete (405) instead of an unexplained "access denied".
    method_permission_name = {
        **VIEW_METHOD_ACTIONS,
        "upload": "write",
        "file": "read",
        "delete": "write",
    }
    base_permissions = ["can_read", "can_write"]
    """Documents are immutable: a correction is a new version, so there is no edit or delete."""
    extra_args = {"audit_record_type": Document.__tablename__}
    """The show page's link to the document's history (uploads and downloads) in the audit log."""

    list_title = "Documents"
    list_columns = [
        "doc_type",
        "version",
        "original_name",
        "client",
        "lead",
        "content_type",
        "expires_on",
        "uploaded_by",
        "uploaded_at",
    ]
    show_columns = [
        "doc_type",
        "version",
        "original_name",
        "client",
        "lead",
        "content_type",
        "size_bytes",
        "sha256",
        "expires_on",
        "uploaded_by",
        "uploaded_at",
    ]
    search_columns = ["doc_type", "client", "lead", "expires_on", "uploaded_by", "original_name"]
    order_columns = ["uploaded_at", "expires_on", "version"]
    base_order = ("uploaded_at", "desc")
    formatters_columns = {"doc_type": display_choice}
    label_columns = {
        "original_name": "File name",
        "size_bytes": "Size (bytes)",
        "sha256": "SHA-256",
    }
    show_template = "crm/document_show.html"

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        return redirect(url_for(f"{self.endpoint}.upload", **request.args))

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        abort(405, description="Documents are not edited: upload a new version instead.")

    @expose("/delete/<pk>", methods=["GET", "POST"])
    @has_access
    def delete(self, pk):
        abort(405, description="Documents are kept: older versions stay readable.")

    @expose("/upload", methods=["GET", "POST"])
    @has_access
    def upload(self):
        form = UploadForm()
        if request.method == "GET":
            # Opened from a client's or lead's page: preselect it (scoped, so only one's own).
            for field, model in (("client", Client), ("lead", Lead)):
                pk = request.args.get(f"{field}_id", type=int)
                if pk:
                    getattr(form, field).data = db.session.scalar(
                        db.select(model).where(model.id == pk)
                    )
        if form.validate_on_submit():
            upload = form.file.data
            try:
                owner = services.find_owner(
                    client_id=form.client.data.id if form.client.data else None,
                    lead_id=form.lead.data.id if form.lead.data else None,
                )
                document = services.upload_document(
                    owner, form.doc_type.data, upload.filename, upload.read(), form.expires_on.data
                )
                services.commit_upload()
            except DomainError as exc:
                db.session.rollback()
                field = {"client_id": "client", "lead_id": "lead"}.get(exc.field, exc.field)
                target = getattr(form, field, None) if field else None
                if target is not None and hasattr(target, "errors"):
                    target.errors = [*target.errors, exc.message]
                else:
                    form.file.errors = [*form.file.errors, str(exc)]
            else:
                flash(f"Uploaded {document!r}.", "success")
                return redirect(url_for(f"{self.endpoint}.show", pk=document.id))
        return self.render_template(
            "crm/document_upload.html", form=form, title="Upload a document"
        )

    @expose("/file/<int:pk>")
    @has_access
    def file(self, pk: int):
        """Download through the permission check: a presigned URL for S3, else the bytes."""
        try:
            download = services.open_document(pk)
        except NotFound:
            abort(404)
        if download.url:
            return redirect(download.url)
        return file_response(download)


def file_response(download: services.Download, inline: bool = False):
    response = send_file(
        BytesIO(download.data),
        mimetype=download.document.content_type,
        as_attachment=not inline,
        download_name=download.document.original_name.replace("/", "_").replace("\\", "_")
        or "document",
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    if inline:  # shown inside this app's own pages only
        response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
    return response

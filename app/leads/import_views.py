"""The Import leads screen: upload, a progress bar while the rows are checked, the report, then
"import the valid rows" or "import nothing". Rules and jobs live in ``app.leads.imports``."""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, url_for
from flask_appbuilder import ModelView, expose, has_access
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired

from app.core.audit import record_rejection
from app.core.crud import CrmSQLAInterface, NoFileDownloadMixin
from app.core.errors import DomainError
from app.core.forms import display_choice, display_timestamp
from app.core.localtime import LocalTimeColumnsMixin
from app.exports.lists import ExportableListMixin
from app.extensions import db
from app.leads import imports
from app.leads.importing import COLUMNS
from app.leads.models import LeadImport
from app.security.roles import VIEW_METHOD_ACTIONS


class ImportUploadForm(FlaskForm):
    file = FileField("File", validators=[FileRequired()], render_kw={"accept": ".csv,.xlsx"})


class ImportDecisionForm(FlaskForm):
    """Only the CSRF token: the import and discard buttons post it."""


class LeadImportView(LocalTimeColumnsMixin, ExportableListMixin, NoFileDownloadMixin, ModelView):
    datamodel = CrmSQLAInterface(LeadImport)
    class_permission_name = "LeadImport"
    method_permission_name = {
        **VIEW_METHOD_ACTIONS,
        "upload": "write",
        "progress": "read",
        "import_rows": "write",
        "discard": "write",
        "delete": "write",
    }
    base_permissions = ["can_read", "can_write"]
    """An import is never edited or deleted: it is discarded, and stays in the list."""
    default_view = "upload"

    list_title = "Lead imports"
    list_columns = [
        "created_at",
        "file_name",
        "status",
        "total_rows",
        "valid_rows",
        "invalid_rows",
        "duplicate_rows",
        "imported_rows",
        "created_by",
        "branch",
    ]
    search_columns = ["status", "file_name", "created_by", "branch", "created_at"]
    order_columns = ["created_at", "file_name", "status"]
    base_order = ("created_at", "desc")
    formatters_columns = {"status": display_choice, "created_at": display_timestamp}
    label_columns = {
        "file_name": "File",
        "total_rows": "Rows",
        "valid_rows": "Valid",
        "invalid_rows": "Invalid",
        "duplicate_rows": "Duplicates",
        "imported_rows": "Imported",
        "created_by": "Uploaded by",
    }

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        return redirect(url_for(f"{self.endpoint}.upload"))

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        abort(405, description="An import is not edited: upload a corrected file instead.")

    @expose("/delete/<pk>", methods=["GET", "POST"])
    @has_access
    def delete(self, pk):
        abort(405, description="An import is kept: discard it to import nothing.")

    @expose("/upload", methods=["GET", "POST"])
    @has_access
    def upload(self):
        """Choose a file; it is checked at once (name, bytes, columns), then row by row."""
        form = ImportUploadForm()
        if form.validate_on_submit():
            upload = form.file.data
            try:
                lead_import = imports.upload_import(upload.filename, upload.read())
                db.session.commit()
            except DomainError as exc:
                db.session.rollback()
                record_rejection(LeadImport.__tablename__, str(exc))
                form.file.errors = [*form.file.errors, exc.message]
            else:
                imports.start_check(lead_import)
                return redirect(url_for(f"{self.endpoint}.show", pk=lead_import.id))
        if form.errors:
            return self._render_upload(form), 422
        return self._render_upload(form)

    def _render_upload(self, form: ImportUploadForm):
        return self.render_template(
            "crm/lead_import_upload.html",
            form=form,
            title="Import leads",
            columns=COLUMNS,
            max_bytes=imports.max_import_bytes(),
        )

    @expose("/show/<int:pk>")
    @has_access
    def show(self, pk: int):
        """The import's progress (a bar that polls ``progress``) or its report and choices."""
        lead_import = self._find(pk)
        return self.render_template(
            "crm/lead_import_show.html",
            lead_import=lead_import,
            status=imports.import_status(lead_import),
            problems=imports.import_problems(lead_import),
            form=ImportDecisionForm(),
            title=f"Import of {lead_import.file_name}",
        )

    @expose("/progress/<int:pk>")
    @has_access
    def progress(self, pk: int):
        """Where the check or import stands, as JSON for the progress bar."""
        return jsonify(imports.import_status(self._find(pk)))

    @expose("/import/<int:pk>", methods=["POST"])
    @has_access
    def import_rows(self, pk: int):
        """Import the valid rows (a job: all of them in one transaction, or none)."""
        return self._decide(pk, imports.request_import, imports.start_import)

    @expose("/discard/<int:pk>", methods=["POST"])
    @has_access
    def discard(self, pk: int):
        """Import nothing."""
        return self._decide(pk, imports.discard_import, None)

    def _decide(self, pk: int, decide, start):
        form = ImportDecisionForm()
        if not form.validate_on_submit():
            abort(400, description="The form could not be accepted; reload the page.")
        try:
            lead_import = decide(pk)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            if exc.status == 404:
                abort(404)
            record_rejection(LeadImport.__tablename__, str(exc))
            flash(str(exc), "danger")
            return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        if start is not None:
            start(lead_import)
        else:
            flash("Import discarded: nothing was imported.", "info")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))

    def _find(self, pk: int) -> LeadImport:
        try:
            return imports.find_import(pk)
        except DomainError:
            abort(404)

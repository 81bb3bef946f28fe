"""The audit log screen and API: read-only for Admin, Compliance and Auditor."""

from __future__ import annotations

from flask import redirect
from flask_appbuilder import ModelRestApi, ModelView, expose, has_access

from app.audit.models import AuditLog
from app.core.crud import CrmSQLAInterface, NoFileDownloadMixin, filtered_list_url
from app.core.forms import display_choice
from app.core.localtime import LocalTimeColumnsMixin
from app.exports.lists import ExportableListMixin
from app.security.roles import API_METHOD_ACTIONS, VIEW_METHOD_ACTIONS

COLUMNS = [
    "seq",
    "occurred_at",
    "actor_name",
    "client_addr",
    "action",
    "record_type",
    "record_id",
    "changes",
    "detail",
]


class AuditLogView(LocalTimeColumnsMixin, ExportableListMixin, NoFileDownloadMixin, ModelView):
    datamodel = CrmSQLAInterface(AuditLog)
    class_permission_name = "AuditLog"
    method_permission_name = {**VIEW_METHOD_ACTIONS, "record_history": "read"}
    base_permissions = ["can_read"]
    """Only reading: nobody, not even Admin, adds, edits or deletes audit rows."""

    list_title = "Audit log"
    show_title = "Audit entry"
    list_columns = [
        "seq",
        "occurred_at",
        "actor_name",
        "action",
        "record_type",
        "record_id",
        "client_addr",
    ]
    show_columns = COLUMNS + ["prev_hash", "row_hash"]
    search_columns = [
        "actor_name",
        "actor_id",
        "action",
        "record_type",
        "record_id",
        "occurred_at",
        "client_addr",
    ]
    order_columns = ["seq", "occurred_at"]
    base_order = ("seq", "desc")
    formatters_columns = {"action": display_choice}
    label_columns = {
        "seq": "#",
        "actor_name": "Who",
        "client_addr": "From",
        "record_type": "Record",
    }

    @expose("/record/<string:record_type>/<string:record_id>")
    @has_access
    def record_history(self, record_type: str, record_id: str):
        """The history of one record: the list filtered on it (linked from its own page)."""
        return redirect(
            filtered_list_url(self, {"record_type": record_type, "record_id": record_id})
        )


class AuditLogApi(ModelRestApi):
    resource_name = "auditlog"
    datamodel = CrmSQLAInterface(AuditLog)
    class_permission_name = "AuditLog"
    method_permission_name = API_METHOD_ACTIONS
    base_permissions = ["can_read"]
    allow_browser_login = True
    list_columns = ["id", *COLUMNS]
    show_columns = ["id", *COLUMNS, "prev_hash", "row_hash"]
    search_columns = ["actor_name", "actor_id", "action", "record_type", "record_id", "occurred_at"]
    order_columns = ["seq", "occurred_at"]

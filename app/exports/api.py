"""``/api/v1/exportjob/``: the caller's own background exports (what, how far, until when), for
systems that start an export and poll it; the file itself downloads from ``/exports/<id>/download``."""

from __future__ import annotations

from app.core.crud import CrmSQLAInterface, FilterCurrentUser, ReadOnlyRestApi
from app.exports.models import ExportJob

COLUMNS = [
    "id",
    "title",
    "source",
    "target",
    "file_format",
    "filters_text",
    "status",
    "processed_rows",
    "total_rows",
    "file_name",
    "size_bytes",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "expires_at",
]


class ExportJobApi(ReadOnlyRestApi):
    resource_name = "exportjob"
    datamodel = CrmSQLAInterface(ExportJob)
    class_permission_name = "Export"
    base_permissions = ["can_read"]
    base_filters = [["owner_id", FilterCurrentUser, None]]
    """Nobody, Admin included, lists or reads another person's exports."""
    list_columns = show_columns = COLUMNS
    search_columns = ["status", "file_format", "source", "created_at"]
    order_columns = ["id", "created_at"]
    base_order = ("id", "desc")

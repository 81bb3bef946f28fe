"""REST API for tasks under /api/v1/task/, scoped like the screens."""

from __future__ import annotations

from marshmallow_sqlalchemy import SQLAlchemyAutoSchema, auto_field

from app.core.crud import CrmSQLAInterface, ServiceModelRestApi
from app.extensions import db
from app.tasks import services
from app.tasks.models import Task

TASK_FIELDS = [
    "title",
    "description",
    "due_at",
    "priority",
    "status",
    "assignee_id",
    "lead_id",
    "client_id",
]


class TaskWriteSchema(SQLAlchemyAutoSchema):
    """What a POST or PUT may send. Declared here because the schema FAB generates leaves
    foreign-key ids untyped and refuses null for them (a task without a lead could not be
    edited); the service checks everything else."""

    class Meta:
        model = Task
        fields = TASK_FIELDS
        include_fk = True
        load_instance = True
        sqla_session = db.session

    assignee_id = auto_field(required=False, allow_none=True)  # blank: the caller


class TaskAddSchema(TaskWriteSchema):
    """A POST's body (its own class, so the OpenAPI document names the POST's and the PUT's
    bodies apart)."""


class TaskEditSchema(TaskWriteSchema):
    """A PUT's body."""


class TaskApi(ServiceModelRestApi):
    resource_name = "task"
    datamodel = CrmSQLAInterface(Task)
    class_permission_name = "Task"
    prepare = staticmethod(services.save_task)
    allow_browser_login = True

    list_columns = ["id", *TASK_FIELDS, "branch_id", "created_by_id", "completed_at"]
    show_columns = [*list_columns, "created_at", "updated_at"]
    add_columns = TASK_FIELDS
    edit_columns = TASK_FIELDS
    add_model_schema = TaskAddSchema()
    edit_model_schema = TaskEditSchema()
    search_columns = [
        "title",
        "status",
        "priority",
        "due_at",
        "assignee_id",
        "branch_id",
        "lead_id",
        "client_id",
    ]
    order_columns = ["id", "title", "due_at", "priority", "status", "created_at"]
    base_order = ("due_at", "asc")

"""Screens for branches and staff."""

from __future__ import annotations

from app.core.crud import CrmSQLAInterface, ServiceModelView
from app.core.validators import form_validator
from app.org import services
from app.org.models import Branch, StaffProfile


class BranchView(ServiceModelView):
    datamodel = CrmSQLAInterface(Branch)
    class_permission_name = "Branch"
    prepare = staticmethod(services.prepare_branch)
    list_title = "Branches"
    list_columns = ["code", "name", "timezone"]
    show_columns = ["code", "name", "address", "timezone", "created_at"]
    add_columns = ["code", "name", "address", "timezone"]
    edit_columns = add_columns
    search_columns = ["code", "name"]
    validators_columns = {"timezone": [form_validator(services.check_timezone)]}


class StaffView(ServiceModelView):
    datamodel = CrmSQLAInterface(StaffProfile)
    class_permission_name = "Staff"
    prepare = staticmethod(services.prepare_staff_profile)
    list_title = "Staff"
    list_columns = ["user", "title", "branch", "phone", "manager"]
    show_columns = list_columns
    add_columns = ["user", "branch", "title", "phone", "manager"]
    edit_columns = add_columns
    search_columns = ["branch", "title"]

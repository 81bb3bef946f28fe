"""REST API for branches and staff profiles."""

from __future__ import annotations

from app.core.crud import CrmSQLAInterface, ServiceModelRestApi
from app.org import services
from app.org.models import Branch, StaffProfile


class BranchApi(ServiceModelRestApi):
    resource_name = "branch"
    datamodel = CrmSQLAInterface(Branch)
    class_permission_name = "Branch"
    prepare = staticmethod(services.prepare_branch)
    allow_browser_login = True
    list_columns = ["id", "code", "name", "address", "timezone"]
    show_columns = list_columns
    add_columns = ["code", "name", "address", "timezone"]
    edit_columns = add_columns


class StaffApi(ServiceModelRestApi):
    resource_name = "staff"
    datamodel = CrmSQLAInterface(StaffProfile)
    class_permission_name = "Staff"
    prepare = staticmethod(services.prepare_staff_profile)
    allow_browser_login = True
    list_columns = ["id", "user_id", "branch_id", "title", "phone", "manager_id"]
    show_columns = list_columns
    add_columns = ["user_id", "branch_id", "title", "phone", "manager_id"]
    edit_columns = ["branch_id", "title", "phone", "manager_id"]

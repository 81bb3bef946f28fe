"""FAB's security APIs (users, roles, groups, permissions, resources) answering refusals as
4xx JSON: FAB's own answer 500 when the database refuses a row (an empty permission pair)."""

from __future__ import annotations

from flask_appbuilder.security.sqla.apis import (
    GroupApi,
    PermissionApi,
    PermissionViewMenuApi,
    RoleApi,
    UserApi,
    ViewMenuApi,
)

from app.core.crud import AnswersRefusals


class CrmPermissionApi(AnswersRefusals, PermissionApi):
    pass


class CrmRoleApi(AnswersRefusals, RoleApi):
    pass


class CrmUserApi(AnswersRefusals, UserApi):
    pass


class CrmViewMenuApi(AnswersRefusals, ViewMenuApi):
    pass


class CrmPermissionViewMenuApi(AnswersRefusals, PermissionViewMenuApi):
    pass


class CrmGroupApi(AnswersRefusals, GroupApi):
    pass

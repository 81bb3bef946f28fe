"""FAB's security APIs (users, roles, groups, permissions, resources) answering refusals as
4xx JSON: FAB's own answer 500 when the database refuses a row (an empty permission pair)."""

from __future__ import annotations

from flask_appbuilder.api import expose, safe
from flask_appbuilder.security.decorators import permission_name, protect
from flask_appbuilder.security.sqla.apis import (
    GroupApi,
    PermissionApi,
    PermissionViewMenuApi,
    RoleApi,
    UserApi,
    ViewMenuApi,
)
from flask_appbuilder.security.sqla.apis.group.schema import GroupPostSchema, GroupPutSchema

from app.core.crud import AnswersRefusals


class CrmPermissionApi(AnswersRefusals, PermissionApi):
    pass


class CrmRoleApi(AnswersRefusals, RoleApi):
    pass


class CrmUserApi(AnswersRefusals, UserApi):
    @expose("/<pk>", methods=("PUT",))
    @protect()
    @safe
    @permission_name("put")
    def put(self, pk):
        """FAB's user update; an unknown user is a 404 (FAB's answers 500).
        ---
        put:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/{{self.__class__.__name__}}.put'}
          responses:
            200:
              description: Item changed
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      result: {$ref: '#/components/schemas/{{self.__class__.__name__}}.put'}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        if self.datamodel.get(pk, self._base_filters) is None:
            return self.response_404()
        return UserApi.put.__wrapped__(self, pk)


class CrmViewMenuApi(AnswersRefusals, ViewMenuApi):
    pass


class CrmPermissionViewMenuApi(AnswersRefusals, PermissionViewMenuApi):
    pass


class CrmGroupApi(AnswersRefusals, GroupApi):
    # FAB searches groups by every listed column, "roles.name" and "users.username" too, which
    # it has no filter for (a warning per column at start-up): its roles and users are
    # searched as relations instead.
    search_columns = ["id", "name", "label", "description", "roles", "users"]
    # FAB documents its bodies as the components GroupPostSchema and GroupPutSchema and also
    # adds the same classes as this API's post and put schemas: one class under two names.
    add_model_schema = type("CrmGroupPostSchema", (GroupPostSchema,), {})()
    edit_model_schema = type("CrmGroupPutSchema", (GroupPutSchema,), {})()

"""FinCRM's security manager: FAB's, with the API login throttled like the form login."""

from __future__ import annotations

from flask import current_app, has_request_context, request
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import (
    PermissionModelView,
    PermissionViewModelView,
    RoleModelView,
    UserDBModelView,
    UserGroupModelView,
    ViewMenuModelView,
)

from app.core.crud import NoFileDownloadMixin
from app.security.fab_apis import (
    CrmGroupApi,
    CrmPermissionApi,
    CrmPermissionViewMenuApi,
    CrmRoleApi,
    CrmUserApi,
    CrmViewMenuApi,
)


class CrmUserDBModelView(NoFileDownloadMixin, UserDBModelView):
    class_permission_name = "UserDBModelView"


class CrmRoleModelView(NoFileDownloadMixin, RoleModelView):
    class_permission_name = "RoleModelView"


class CrmUserGroupModelView(NoFileDownloadMixin, UserGroupModelView):
    class_permission_name = "UserGroupModelView"


class CrmPermissionModelView(NoFileDownloadMixin, PermissionModelView):
    class_permission_name = "PermissionModelView"


class CrmViewMenuModelView(NoFileDownloadMixin, ViewMenuModelView):
    class_permission_name = "ViewMenuModelView"


class CrmPermissionViewModelView(NoFileDownloadMixin, PermissionViewModelView):
    class_permission_name = "PermissionViewModelView"


def _unreadable(value: object) -> bool:
    return isinstance(value, str) and any(ord(ch) < 32 for ch in value)


class CrmSecurityManager(SecurityManager):
    userdbmodelview = CrmUserDBModelView
    rolemodelview = CrmRoleModelView
    groupmodelview = CrmUserGroupModelView
    permissionmodelview = CrmPermissionModelView
    viewmenumodelview = CrmViewMenuModelView
    permissionviewmodelview = CrmPermissionViewModelView
    permission_api = CrmPermissionApi
    role_api = CrmRoleApi
    user_api = CrmUserApi
    view_menu_api = CrmViewMenuApi
    permission_view_menu_api = CrmPermissionViewMenuApi
    group_api = CrmGroupApi
    # FAB's user statistics chart loads Google Charts from the internet (blank offline) and
    # answers 500 to a non-numeric grouping; dashboards are served by our own Plotly views.
    userstatschartview = None

    def get_user_by_id(self, pk):
        """The signed-in user with their roles, groups and branch, in one statement (FAB loads
        each collection lazily on every request, and row scoping would read the branch)."""
        from sqlalchemy import select
        from sqlalchemy.orm import joinedload

        from app.org.models import StaffProfile
        from app.security.scoping import UNSCOPED, remember_branch

        user_model = self.user_model
        row = (
            self.session.execute(
                select(user_model, StaffProfile.branch_id)
                .outerjoin(StaffProfile, StaffProfile.user_id == user_model.id)
                .where(user_model.id == pk)
                .options(joinedload(user_model.roles), joinedload(user_model.groups)),
                execution_options=UNSCOPED,
            )
            .unique()
            .first()
        )
        if row is None:
            return None
        user, branch_id = row
        remember_branch(user.id, branch_id)
        return user

    def exist_permission_on_roles(
        self, view_name: str, permission_name: str, role_ids: list[int]
    ) -> bool:
        """FAB asks this once per menu item, button and route (about 70 times on a page): answer
        from the roles' permissions, read in one statement per request."""
        if not has_request_context():
            return super().exist_permission_on_roles(view_name, permission_name, role_ids)
        return (permission_name, view_name) in self._request_permissions(role_ids)

    def _request_permissions(self, role_ids: list[int]) -> frozenset[tuple[str, str]]:
        """(permission, view) pairs granted to ``role_ids``, cached for the current request
        (a change of grants shows from the next request on)."""
        from flask_appbuilder.security.sqla.models import (
            Permission,
            PermissionView,
            ViewMenu,
            assoc_permissionview_role,
        )
        from sqlalchemy import select

        cache = request.environ.setdefault("crm.permissions", {})
        key = frozenset(role_ids)
        if key not in cache:
            rows = self.session.execute(
                select(Permission.name, ViewMenu.name)
                .select_from(PermissionView)
                .join(Permission, Permission.id == PermissionView.permission_id)
                .join(ViewMenu, ViewMenu.id == PermissionView.view_menu_id)
                .join(
                    assoc_permissionview_role,
                    assoc_permissionview_role.c.permission_view_id == PermissionView.id,
                )
                .where(assoc_permissionview_role.c.role_id.in_(key))
            )
            cache[key] = frozenset((permission, view) for permission, view in rows)
        return cache[key]

    def auth_user_db(self, username, password):
        """FAB's password check, with every success and failure written to the audit log."""
        from app.core.audit import record_event

        if _unreadable(username) or _unreadable(password):
            # A NUL byte (PostgreSQL cannot compare it) or other control character: no user
            # has such a name, so the attempt fails like any wrong password.
            record_event(
                "login_failed",
                actor_name="(unreadable)",
                detail=f"failed sign-in with control characters in {str(username)[:60]!r}",
            )
            return None
        user = super().auth_user_db(username, password)
        if user:
            record_event("login", actor_id=user.id, actor_name=user.username)
        else:
            attempted = str(username or "")[:60]
            record_event(
                "login_failed",
                actor_name=attempted or "(blank)",
                detail=f"failed sign-in for {attempted!r}",
            )
        return user

    def create_jwt_manager(self, app):
        """FAB's JWT manager; a token that is not a valid JWT (forged, cut, not a token at all)
        is an authentication failure, 401 like an expired one, not flask-jwt-extended's 422."""
        from flask import jsonify

        jwt_manager = super().create_jwt_manager(app)

        from app.core.audit import record_event

        @jwt_manager.invalid_token_loader
        def _invalid_token(reason: str):
            record_event(
                "login_failed",
                actor_name="(bearer token)",
                detail=f"invalid bearer token: {reason} ({request.method} {request.path})"[:2000],
            )
            return jsonify(message=f"Not signed in: the bearer token is invalid ({reason})."), 401

        @jwt_manager.expired_token_loader
        def _expired_token(header: dict, payload: dict):
            record_event(
                "login_failed",
                actor_name="(bearer token)",
                detail=f"expired bearer token of user {payload.get('sub')!r} "
                f"({request.method} {request.path})",
            )
            return jsonify(message="Not signed in: the bearer token has expired."), 401

        return jwt_manager

    def validate_api_key(self, api_key_string):
        """FAB's API key check, with each refused key (revoked, expired, made up) audited."""
        from app.core.audit import record_event

        user = super().validate_api_key(api_key_string)
        if user is None:
            record_event(
                "login_failed",
                actor_name="(API key)",
                detail=f"refused API key {api_key_string[:12]}... ({request.method} {request.path})",
            )
        return user

    def limit_api_login(self) -> None:
        """Throttle ``POST /api/v1/security/login`` (FAB limits only the form login)."""
        if not current_app.config.get("AUTH_RATE_LIMITED"):
            return
        api = next(
            (
                view
                for view in self.appbuilder.baseviews
                if view.__class__.__name__ == "SecurityApi"
            ),
            None,
        )
        if api is not None:
            self.limiter.limit(self.auth_rate_limit, methods=["POST"])(api.blueprint)

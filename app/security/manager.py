"""FinCRM's security manager: FAB's, with the API login throttled like the form login."""

from __future__ import annotations

from flask import current_app, g, has_request_context, request
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import (
    PermissionModelView,
    PermissionViewModelView,
    RoleModelView,
    UserDBModelView,
    UserGroupModelView,
    ViewMenuModelView,
)
from flask_login import current_user

from app.core.crud import NoFileDownloadMixin
from app.core.localtime import LocalTimeColumnsMixin
from app.security.fab_apis import (
    CrmGroupApi,
    CrmPermissionApi,
    CrmPermissionViewMenuApi,
    CrmRoleApi,
    CrmUserApi,
    CrmViewMenuApi,
)


class CrmUserDBModelView(LocalTimeColumnsMixin, NoFileDownloadMixin, UserDBModelView):
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


def _real(user: object) -> object:
    """The object behind a context proxy (``current_user``, FAB's ``g.user``)."""
    get = getattr(user, "_get_current_object", None)
    return get() if get is not None else user


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

    def register_views(self) -> None:
        """FAB's screens and security APIs, but not FAB's own API-key API
        (``/api/v1/security/api_keys/``): keys are made, listed and revoked through FinCRM's
        ``/api/v1/apikey/`` and ``flask crm api-key`` alone, which audit each one
        (``app.security.api_keys``)."""
        from flask_appbuilder.security.manager import BaseSecurityManager

        BaseSecurityManager.register_views(self)
        if current_app.config.get("FAB_ADD_SECURITY_API", False):
            for api in (
                self.permission_api,
                self.role_api,
                self.user_api,
                self.view_menu_api,
                self.permission_view_menu_api,
                self.group_api,
            ):
                self.appbuilder.add_api(api)

    def get_user_by_id(self, pk):
        """The signed-in user with their roles, groups, branch and its time zone, in one
        statement (FAB loads each collection lazily on every request, row scoping would read
        the branch and every time shown the zone)."""
        from sqlalchemy import select
        from sqlalchemy.orm import joinedload

        from app.core.localtime import remember_zone
        from app.org.models import Branch, StaffProfile
        from app.security.scoping import UNSCOPED, remember_branch
        from app.security.sessions import UserSession, remember_version

        user_model = self.user_model
        row = (
            self.session.execute(
                select(user_model, StaffProfile.branch_id, Branch.timezone, UserSession.version)
                .outerjoin(StaffProfile, StaffProfile.user_id == user_model.id)
                .outerjoin(Branch, Branch.id == StaffProfile.branch_id)
                .outerjoin(UserSession, UserSession.user_id == user_model.id)
                .where(user_model.id == pk)
                .options(joinedload(user_model.roles), joinedload(user_model.groups)),
                execution_options=UNSCOPED,
            )
            .unique()
            .first()
        )
        if row is None:
            return None
        user, branch_id, zone_name, version = row
        remember_branch(user.id, branch_id)
        remember_version(user.id, version)
        remember_zone(user.id, zone_name)
        return user

    def has_access(self, permission_name: str, view_name: str) -> bool:
        """FAB's check of the signed-in user's permission, answered from the user's grants read
        once per request: a list page asks about 75 different questions (every menu item,
        button and route), and FAB resolved the user and gathered their roles for each."""
        grants = self._request_grants()
        if grants is None:
            return super().has_access(permission_name, view_name)
        return (permission_name, view_name) in grants

    def _request_grants(self) -> frozenset[tuple[str, str]] | None:
        """The (permission, view) pairs of the user FAB decides for in this request (signed in
        by session or API key, active, attached): the union of their roles' and groups' roles'
        permissions. Remembered for those very user objects, so signing in or out within the
        request is seen. None where FAB's own path decides: outside a request, a visitor, a
        bearer token without a session, an inactive user, or a built-in role (FAB matches
        those by pattern)."""
        if not has_request_context():
            return None
        user = _real(g.get("user"))
        if not getattr(user, "is_authenticated", False):
            return None
        api_key = bool(g.get("_api_key_user", False))
        signed_in = _real(current_user)
        if not api_key and not getattr(signed_in, "is_authenticated", False):
            return None  # FAB asks flask-jwt-extended's user: leave it to FAB
        key = (api_key, signed_in, user)
        cache = request.environ.setdefault("crm.grants", {})
        if key not in cache:
            cache[key] = self._grants_of(user)
        return cache[key]

    def _grants_of(self, user: object) -> frozenset[tuple[str, str]] | None:
        if not getattr(user, "is_active", False) or self._is_user_detached(user):
            return None
        roles = self.get_user_roles(user)
        if any(role.name in self.builtin_roles for role in roles):
            return None
        role_ids = [role.id for role in roles]
        return self._request_permissions(role_ids) if role_ids else frozenset()

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
            from app.security.throttle import record_failure

            attempted = str(username or "")[:60]
            record_failure(attempted)
            record_event(
                "login_failed",
                actor_name=attempted or "(blank)",
                detail=f"failed sign-in for {attempted!r}",
            )
        return user

    def load_user_jwt(self, _jwt_header, jwt_data):
        """FAB's bearer-token user, refused (None: 401) when the token is of an earlier session
        version: the user signed out, was deactivated or changed password since
        (``app.security.sessions``; the version comes with the user, no extra statement)."""
        from app.security.sessions import token_is_current

        user = super().load_user_jwt(_jwt_header, jwt_data)
        if user is not None and not token_is_current(jwt_data, user.id):
            g.pop("user", None)
            return None
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
        """One throttle for the form and the API sign-in (``app.security.throttle``); FAB's
        own, which limits only the form, is off (``AUTH_RATE_LIMITED = False``)."""
        from app.security.throttle import install_login_throttle

        install_login_throttle(current_app)

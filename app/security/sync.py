"""Make the database's roles and permissions match ``app.security.roles``.

Run by ``flask crm init`` only (never at start-up). Idempotent: the second run finds nothing
to change and reports zero changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_appbuilder import AppBuilder

from app.security.roles import (
    ADMIN_ONLY_MENUS,
    ADMIN_ROLE,
    ROLES,
    SELF_SERVICE_PERMISSIONS,
    menus_for,
)


@dataclass
class SyncReport:
    roles_created: int = 0
    grants_added: int = 0
    grants_removed: int = 0

    @property
    def changes(self) -> int:
        return self.roles_created + self.grants_added + self.grants_removed


def desired_permissions(builder: AppBuilder, role: str) -> set[tuple[str, str]]:
    """(permission, view) pairs ``role`` should hold, among those the registered views define."""
    existing = _registered_pairs(builder)
    if role == ADMIN_ROLE:
        return existing
    spec = ROLES[role]
    wanted: set[tuple[str, str]] = set()
    for resource, actions in spec.grants.items():
        wanted.update((f"can_{action}", resource) for action in actions)
    wanted.update(("menu_access", menu) for menu in menus_for(role))
    wanted.update(SELF_SERVICE_PERMISSIONS)
    return wanted & existing


def _registered_pairs(builder: AppBuilder) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for view in builder.baseviews:
        pairs.update((perm, view.class_permission_name) for perm in view.base_permissions)
    for menu in _menu_names(builder):
        pairs.add(("menu_access", menu))
    return pairs


def _menu_names(builder: AppBuilder) -> set[str]:
    names: set[str] = set()
    for item in builder.menu.get_list():
        names.add(item.name)
        names.update(child.name for child in item.childs if child.name != "-")
    return names


def sync_roles(builder: AppBuilder) -> SyncReport:
    """Create every role of ``ROLES`` and make its grants exactly the declared ones."""
    sm = builder.sm
    report = SyncReport()
    # FAB records each registered view's permissions (and gives them all to Admin).
    if sm.find_role(ADMIN_ROLE) is None:
        sm.add_role(ADMIN_ROLE)
        report.roles_created += 1
    builder.add_permissions(update_perms=True)
    for name in ROLES:
        role = sm.find_role(name)
        if role is None:
            role = sm.add_role(name)
            report.roles_created += 1
        wanted = desired_permissions(builder, name)
        held = {(pv.permission.name, pv.view_menu.name): pv for pv in role.permissions}
        for pair in sorted(wanted - held.keys()):
            pv = sm.find_permission_view_menu(*pair) or sm.add_permission_view_menu(*pair)
            sm.add_permission_role(role, pv)
            report.grants_added += 1
        for pair in sorted(held.keys() - wanted):
            sm.del_permission_role(role, held[pair])
            report.grants_removed += 1
    if sm.find_role(builder.sm.auth_role_public) is None:
        sm.add_role(builder.sm.auth_role_public)
        report.roles_created += 1
    return report


def undecided_menus(builder: AppBuilder) -> set[str]:
    """Menu entries nobody decided on (neither a resource menu nor an admin-only one)."""
    from app.security.roles import MENU_CATEGORIES, RESOURCES

    decided = set(ADMIN_ONLY_MENUS) | set(MENU_CATEGORIES)
    for menus in RESOURCES.values():
        decided.update(menus)
    return _menu_names(builder) - decided

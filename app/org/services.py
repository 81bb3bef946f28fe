"""Rules for branches and staff profiles."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select

from app.core.errors import FieldError
from app.core.unit_of_work import without_autoflush
from app.core.validators import clean_text, normalise_phone
from app.extensions import db
from app.org.models import Branch, StaffProfile
from app.security.scoping import current_actor


def check_timezone(value: object) -> str:
    name = clean_text(value, "timezone", 64, required=True)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise FieldError(
            f"{name!r} is not a known time zone (e.g. Asia/Kolkata).", "timezone"
        ) from exc
    return name


@without_autoflush
def prepare_branch(branch: Branch) -> Branch:
    branch.name = clean_text(branch.name, "name", 100, required=True)
    code = clean_text(branch.code, "code", 20, required=True)
    if not code.replace("-", "").isalnum():
        raise FieldError("uses letters, digits and dashes only.", "code")
    branch.code = code.upper()
    branch.address = clean_text(branch.address, "address", 1000)
    branch.timezone = check_timezone(branch.timezone or "UTC")
    return branch


@without_autoflush
def prepare_staff_profile(profile: StaffProfile) -> StaffProfile:
    profile.title = clean_text(profile.title, "title", 100)
    profile.phone = normalise_phone(
        profile.phone, current_app.config["CRM_DEFAULT_PHONE_REGION"], "phone"
    )
    if profile.user is None and profile.user_id is None:
        raise FieldError("is required.", "user")
    if profile.branch is None and profile.branch_id is None:
        raise FieldError("is required.", "branch")
    manager_id = profile.manager.id if profile.manager is not None else profile.manager_id
    user_id = profile.user.id if profile.user is not None else profile.user_id
    if manager_id is not None and manager_id == user_id:
        raise FieldError("a member of staff cannot be their own manager.", "manager")
    return profile


def create_staff(
    username: str,
    password: str,
    roles: list[str],
    branch: Branch,
    first_name: str,
    last_name: str,
    email: str,
    title: str | None = None,
    phone: str | None = None,
    manager_id: int | None = None,
) -> StaffProfile:
    """A FAB user with the given roles plus their staff profile (the caller commits)."""
    from app.extensions import appbuilder

    sm = appbuilder().sm
    role_rows = []
    for name in roles:
        role = sm.find_role(name)
        if role is None:
            raise FieldError(f"unknown role {name!r}; run `flask crm init` first.", "roles")
        role_rows.append(role)
    user = sm.add_user(
        username, first_name, last_name, email, role_rows, password=password, commit=False
    )
    if not user:
        raise FieldError(f"could not create user {username!r} (taken?).", "username")
    db.session.flush()
    profile = StaffProfile(
        user=user, branch=branch, title=title, phone=phone, manager_id=manager_id
    )
    prepare_staff_profile(profile)
    db.session.add(profile)
    db.session.flush()
    return profile


def assignable_staff() -> list[User]:
    """Staff a record (lead, client) may be assigned to by the signed-in user: their own profile for an agent,
    their branch for a manager, everyone for an admin (StaffProfile is row-scoped)."""
    query = select(User).join(StaffProfile, StaffProfile.user_id == User.id).order_by(User.username)
    return list(db.session.scalars(query))


def assignable_branches() -> list[Branch]:
    """Branches a lead may be put in: one's own unless one sees every branch."""
    actor = current_actor()
    query = select(Branch).order_by(Branch.name)
    if actor is not None and actor.user_id is not None and not actor.sees_everything:
        query = query.where(Branch.id == actor.branch_id)
    return list(db.session.scalars(query))


def least_busy_agent(branch_id: int) -> int | None:
    """The active agent of the branch with the fewest open leads (ties: the longest-serving),
    for work that arrives with nobody's name on it, such as web enquiries. One query, counted
    on the (agent, status) index of leads."""
    from flask_appbuilder.security.sqla.models import Role, assoc_user_role
    from sqlalchemy import and_, func

    from app.leads.models import OPEN_LEAD_STATUSES, Lead
    from app.security.scoping import UNSCOPED

    open_leads = func.count(Lead.id)
    query = (
        select(User.id)
        .join(StaffProfile, StaffProfile.user_id == User.id)
        .join(assoc_user_role, assoc_user_role.c.user_id == User.id)
        .join(Role, and_(Role.id == assoc_user_role.c.role_id, Role.name == "Agent"))
        .outerjoin(
            Lead,
            and_(Lead.assigned_agent_id == User.id, Lead.status.in_(OPEN_LEAD_STATUSES)),
        )
        .where(StaffProfile.branch_id == branch_id, User.active.is_(True))
        .group_by(User.id)
        .order_by(open_leads, User.id)
        .limit(1)
    )
    return db.session.execute(query, execution_options=UNSCOPED).scalar()


def active_users_with_role(role: str) -> list[int]:
    """Ids of the active users holding ``role`` (one query, across every branch)."""
    from flask_appbuilder.security.sqla.models import Role, User, assoc_user_role

    from app.security.scoping import UNSCOPED

    return list(
        db.session.scalars(
            select(User.id)
            .join(assoc_user_role, assoc_user_role.c.user_id == User.id)
            .join(Role, Role.id == assoc_user_role.c.role_id)
            .where(Role.name == role, User.active.is_(True)),
            execution_options=UNSCOPED,
        )
    )

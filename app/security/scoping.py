"""Row scoping, enforced once in the data layer.

Every ORM ``SELECT`` issued while a user is signed in gets ``with_loader_criteria`` for each
scoped model, built from the user's roles (``app.security.roles``) and the model's
``__scope__`` rules. Screens, the REST API, services and relationship loads all go through it,
so another agent's lead is simply not found (404), whatever path asks for it.

Writes are checked the same way: after a flush, every new or changed scoped row must still be
visible to the actor, or the flush fails with ``ScopeViolation`` and nothing is written. A model
whose rows the system writes for other people by design (outbox notifications) sets
``__scope_check_writes__ = False``.

Outside a request (CLI, worker jobs) there is no actor and no restriction, unless the job works
for someone: ``with acting_as(actor_for_user(user_id)):`` gives it that user's rows (a large
export, a scheduled report built for each recipient). Code that must see beyond the actor's rows
on purpose (duplicate checks across branches, the public web form) passes
``execution_options(crm_unscoped=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache

from flask import g, has_request_context, request
from flask_login import current_user
from sqlalchemy import ColumnElement, event, exists, false, or_, select
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from app.core.errors import ScopeViolation
from app.security.roles import ROLES, SCOPE_ALL

UNSCOPED = {"crm_unscoped": True}

ScopeRule = Callable[["Actor"], ColumnElement[bool]]
_SCOPED_MODELS: dict[type, dict[str, ScopeRule]] = {}


@dataclass(frozen=True)
class Actor:
    """Who is asking, as far as row scoping cares."""

    user_id: int | None
    roles: frozenset[str]
    branch_id: int | None
    username: str | None = None

    @property
    def sees_everything(self) -> bool:
        return any(ROLES[r].scope == SCOPE_ALL for r in self.roles if r in ROLES)

    @property
    def scopes(self) -> set[str]:
        return {ROLES[r].scope for r in self.roles if r in ROLES}


def scoped(model: type) -> type:
    """Class decorator: register ``model.__scope__`` (scope kind -> criteria builder)."""
    _SCOPED_MODELS[model] = dict(model.__scope__)
    _scope_options.cache_clear()
    return model


def through_parent(
    parent: type, column: Callable[[], ColumnElement], kinds: tuple[str, ...] = ("branch", "own")
) -> dict[str, ScopeRule]:
    """Scope rules for rows that belong to a ``parent`` row (``column()`` names its id): a row
    is visible where its parent is, by the parent's own rules."""

    def rule(kind: str) -> ScopeRule:
        # correlate_except: the sub-query has its own parent, whatever the outer query joins.
        return lambda actor: exists(
            select(parent.id)
            .where(parent.id == column(), parent.__scope__[kind](actor))
            .correlate_except(parent)
        )

    return {kind: rule(kind) for kind in kinds}


def scoped_models() -> dict[type, dict[str, ScopeRule]]:
    return dict(_SCOPED_MODELS)


def criteria_for(model: type, actor: Actor) -> ColumnElement[bool] | None:
    """The WHERE clause limiting ``model`` to ``actor``'s rows, or None for no limit."""
    if actor.sees_everything:
        return None
    rules = _SCOPED_MODELS[model]
    clauses = [rules[kind](actor) for kind in sorted(actor.scopes) if kind in rules]
    if not clauses:
        return false()
    return clauses[0] if len(clauses) == 1 else or_(*clauses)


@contextmanager
def acting_as_system():
    """Within a request, act as the system (no row limits): for public entry points such as the
    web lead form, whose visitor is anonymous but whose writes are the product's own. Outside a
    request (jobs, commands) there are no row limits anyway."""
    if not has_request_context():
        yield
        return
    previous = request.environ.get("crm.system")
    request.environ["crm.system"] = True
    try:
        yield
    finally:
        request.environ["crm.system"] = previous


_acting_actor: ContextVar[Actor | None] = ContextVar("crm_acting_actor", default=None)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Work as ``actor`` (their roles, branch and rows) until the block ends, in a request or
    outside one (a worker job done for a user). Every ORM select gets the actor's scope, rows
    written must stay within it, and audit events name the actor."""
    if actor is None:
        raise ValueError("acting_as needs an actor (is the user gone?)")
    token = _acting_actor.set(actor)
    try:
        yield actor
    finally:
        _acting_actor.reset(token)


def current_actor() -> Actor | None:
    """The signed-in user (session or JWT) of this request, or the actor of an ``acting_as``
    block; None outside both."""
    acting = _acting_actor.get()
    if acting is not None:
        return acting
    if not has_request_context() or request.environ.get("crm.system"):
        return None
    # Cached per request (not on `g`, which an outer app context can share between requests).
    cache = request.environ
    cached = cache.get("crm.actor")
    if cached is not None:
        return cached
    if cache.get("crm.resolving_actor"):
        return None  # the user's own row is being loaded
    cache["crm.resolving_actor"] = True
    try:
        actor = _resolve_actor()
    finally:
        cache["crm.resolving_actor"] = False
    if actor.user_id is not None:
        cache["crm.actor"] = actor
    return actor


def _resolve_actor() -> Actor:
    # FAB checks permissions against g.user (the JWT user once a bearer token is verified,
    # else the session user): scope rows by the same user.
    user = g.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        user = current_user if current_user.is_authenticated else None
    if user is None or not getattr(user, "is_authenticated", False):
        actor = Actor(user_id=None, roles=frozenset(), branch_id=None)
    else:
        actor = Actor(
            user_id=user.id,
            roles=frozenset(role.name for role in user.roles),
            branch_id=_branch_of(user.id),
            username=user.username,
        )
    return actor


def actor_for_user(user_id: int) -> Actor | None:
    """The actor a background job or command works as: ``user_id``'s roles and branch."""
    from flask_appbuilder.security.sqla.models import User

    from app.extensions import db

    user = db.session.get(User, user_id)
    if user is None:
        return None
    return Actor(
        user.id, frozenset(role.name for role in user.roles), _branch_of(user.id), user.username
    )


def remember_branch(user_id: int, branch_id: int | None) -> None:
    """Note ``user_id``'s branch for the rest of the request (read with the user), so row
    scoping does not read it again."""
    if has_request_context():
        request.environ[f"crm.branch_of.{user_id}"] = branch_id


def _branch_of(user_id: int) -> int | None:
    from app.extensions import db
    from app.org.models import StaffProfile

    key = f"crm.branch_of.{user_id}"
    if has_request_context() and key in request.environ:
        return request.environ[key]
    return db.session.execute(
        select(StaffProfile.branch_id).where(StaffProfile.user_id == user_id),
        execution_options=UNSCOPED,
    ).scalar_one_or_none()


def _reads_security_tables_only(state: ORMExecuteState) -> bool:
    """A statement that touches FAB's security tables and nothing else (loading the signed-in
    user, their roles, the permissions): no scoped row can be among its results."""
    from sqlalchemy.sql.util import find_tables

    if not state.all_mappers or not all(m.class_ in _SECURITY_MODELS for m in state.all_mappers):
        return False
    tables = find_tables(state.statement, include_joins=True, include_aliases=True)
    return all(getattr(t, "name", "").startswith("ab_") for t in tables)


def _add_scope_criteria(state: ORMExecuteState) -> None:
    if not state.is_select or state.execution_options.get("crm_unscoped"):
        return
    if _reads_security_tables_only(state):
        return  # users, roles, permissions: never scoped (and loading the user finds the actor)
    actor = current_actor()
    if actor is None:
        return
    options = _scope_options(actor)
    if options:
        state.statement = state.statement.options(*options)


@lru_cache(maxsize=512)
def _scope_options(actor: Actor) -> tuple:
    """The loader criteria limiting every scoped model to ``actor``'s rows. Built once per
    actor (roles, branch and user fixed) rather than for every statement: with thirty-odd
    scoped models that was most of a page's time spent on scoping."""
    options = []
    for model in _SCOPED_MODELS:
        criteria = criteria_for(model, actor)
        if criteria is not None:
            options.append(with_loader_criteria(model, criteria, include_aliases=True))
    return tuple(options)


def _check_written_rows_visible(session: Session, flush_context: object) -> None:
    actor = current_actor()
    if actor is None or actor.sees_everything:
        return
    written: dict[type, set[int]] = {}
    # Rows this flush deleted (explicitly or as orphans) are not checked: they are gone.
    states = getattr(flush_context, "states", {})
    deleted = {id(state.obj()) for state, (is_delete, _) in states.items() if is_delete}
    for obj in list(session.new) + list(session.dirty):
        if id(obj) in deleted or obj in session.deleted:
            continue
        model = type(obj)
        if not getattr(model, "__scope_check_writes__", True):
            continue
        if model in _SCOPED_MODELS and getattr(obj, "id", None) is not None:
            written.setdefault(model, set()).add(obj.id)
    for model, ids in written.items():
        visible = set(session.scalars(select(model.id).where(model.id.in_(ids))))
        if ids - visible:
            raise ScopeViolation(
                f"You cannot save this {model.__name__.lower()} outside your own records."
            )


_SECURITY_MODELS: set[type] = set()
_installed = False


def install_row_scoping(db: object) -> None:
    """Hook scoping into every ORM session (once per process)."""
    global _installed
    if _installed:
        return
    from flask_appbuilder.security.sqla import models as security

    _SECURITY_MODELS.update(
        (
            security.User,
            security.Role,
            security.Group,
            security.Permission,
            security.ViewMenu,
            security.PermissionView,
        )
    )
    event.listen(Session, "do_orm_execute", _add_scope_criteria)
    event.listen(Session, "after_flush", _check_written_rows_visible)
    _installed = True

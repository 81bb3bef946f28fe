"""The filters of a dashboard, read from the URL and checked against what the user may choose.

Names are the query parameters (``date_from``, ``date_to``, ``branch``, ``agent``, ``bdm``,
``broker``). Dates are calendar days in UTC, both ends included. An id must be among the choices
the user's drop-down offers (the choices are themselves row-scoped: a manager is offered only
their branch's agents), so an unknown id and another branch's id get the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from flask_appbuilder.security.sqla.models import Role, User, assoc_user_role
from sqlalchemy import select

from app.core.errors import FieldError
from app.core.validators import parse_date, parse_int
from app.extensions import db

DATE_FILTERS = ("date_from", "date_to")
ID_FILTERS = ("branch", "agent", "bdm", "broker")
LABELS = {
    "date_from": "From",
    "date_to": "To",
    "branch": "Branch",
    "agent": "Agent",
    "bdm": "BDM",
    "broker": "Broker",
}
AGENT_ROLES = ("Agent", "Manager")
"""Whose names leads and clients are assigned to."""
BDM_ROLES = ("LoanOfficer",)


@dataclass(frozen=True)
class Choice:
    id: int
    label: str


@dataclass(frozen=True)
class DashboardFilters:
    """The filters a dashboard was asked for, checked. Ids are ``None`` when not chosen."""

    date_from: date | None = None
    date_to: date | None = None
    branch: int | None = None
    agent: int | None = None
    bdm: int | None = None
    broker: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    """Chosen filter -> its value in words (``{"branch": "Mumbai"}``)."""

    @property
    def start(self) -> datetime | None:
        """The first instant of ``date_from`` (UTC)."""
        return midnight(self.date_from) if self.date_from else None

    @property
    def end(self) -> datetime | None:
        """The first instant after ``date_to`` (UTC): ranges are ``start <= t < end``."""
        return midnight(self.date_to + timedelta(days=1)) if self.date_to else None

    def query_args(self) -> dict[str, str]:
        """The filters as URL query parameters (what a link to the same view carries)."""
        args: dict[str, str] = {}
        for name in DATE_FILTERS:
            if getattr(self, name) is not None:
                args[name] = getattr(self, name).isoformat()
        for name in ID_FILTERS:
            if getattr(self, name) is not None:
                args[name] = str(getattr(self, name))
        return args

    def in_words(self) -> dict[str, str]:
        """Chosen filters as a reader sees them (printed above an exported table)."""
        return {LABELS[name]: value for name, value in self.labels.items()}


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def filter_choices(names: tuple[str, ...]) -> dict[str, list[Choice]]:
    """The drop-down choices of each id filter in ``names``, one scoped query each."""
    makers = {
        "branch": _branch_choices,
        "agent": lambda: _staff_choices(AGENT_ROLES),
        "bdm": lambda: _staff_choices(BDM_ROLES),
        "broker": _broker_choices,
    }
    return {name: makers[name]() for name in names if name in makers}


def _branch_choices() -> list[Choice]:
    from app.org.services import assignable_branches

    return [Choice(b.id, b.name) for b in assignable_branches()]


def _staff_choices(roles: tuple[str, ...]) -> list[Choice]:
    from app.org.models import StaffProfile

    # StaffProfile is row-scoped: a manager gets their branch's staff, an agent only themselves.
    rows = db.session.execute(
        select(User.id, User.first_name, User.last_name, User.username)
        .join(StaffProfile, StaffProfile.user_id == User.id)
        .join(assoc_user_role, assoc_user_role.c.user_id == User.id)
        .join(Role, Role.id == assoc_user_role.c.role_id)
        .where(Role.name.in_(roles))
        .distinct()
        .order_by(User.first_name, User.last_name, User.id)
    ).all()
    return [Choice(uid, person_name(first, last, username)) for uid, first, last, username in rows]


def person_name(first: str | None, last: str | None, username: str) -> str:
    name = " ".join(part for part in (first, last) if part)
    return name or username


def _broker_choices() -> list[Choice]:
    from app.lending.models import Broker

    rows = db.session.execute(select(Broker.id, Broker.company).order_by(Broker.company)).all()
    return [Choice(bid, company) for bid, company in rows]


def parse_filters(
    args: Mapping[str, str],
    names: tuple[str, ...],
    choices: Mapping[str, list[Choice]] | None = None,
) -> DashboardFilters:
    """Check the URL's filters among ``names`` (others are ignored); a bad one raises
    ``FieldError`` naming it. ``choices`` are the drop-downs' choices (made here if not given)."""
    if choices is None:
        choices = filter_choices(names)
    values: dict[str, object] = {}
    labels: dict[str, str] = {}
    for name in DATE_FILTERS:
        if name in names:
            day = parse_date(args.get(name), name)
            values[name] = day
            if day is not None:
                labels[name] = day.isoformat()
    if (
        values.get("date_from")
        and values.get("date_to")
        and values["date_from"] > values["date_to"]
    ):
        raise FieldError(
            f"{values['date_from']} is after the end date {values['date_to']}; "
            "choose a start on or before the end.",
            "date_from",
        )
    for name in ID_FILTERS:
        if name not in names:
            continue
        number = parse_int(args.get(name), name, 1, 2**31 - 1, required=False)
        if number is None:
            continue
        chosen = next((c for c in choices.get(name, []) if c.id == number), None)
        if chosen is None:
            raise FieldError(
                f"no {LABELS[name].lower() if name != 'bdm' else 'BDM'} with id {number} "
                "is among the ones you can choose.",
                name,
            )
        values[name] = number
        labels[name] = chosen.label
    return DashboardFilters(**values, labels=labels)

"""Times as people read and type them: in the time zone of their branch.

Timestamps are stored in UTC (``app.core.types.UTCDateTime``). A member of staff reads and
types them in their branch's zone (``Branch.timezone``; UTC for someone with no branch); a
message to a client uses the client's branch's zone. The signed-in user's zone is read with
the user (``CrmSecurityManager.get_user_by_id`` joins the branch), so a page costs no extra
statement, and it is kept for the rest of the request; each zone object is made once per
process.

* ``format_local(moment)`` -> ``06 Dec 2026 14:05 IST`` (the Jinja filter ``localtime``);
* ``to_utc(naive, zone)`` reads a time typed on a form, refusing one the clocks skip;
* ``LocalTimeColumnsMixin`` gives every datetime column of a generated screen (list, detail
  page, add and edit forms) the user's zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import has_request_context, request
from flask_appbuilder.fieldwidgets import DateTimePickerWidget
from flask_appbuilder.models.sqla.filters import SQLAFilterConverter, set_value_to_type
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import DateTimeField
from wtforms.fields.core import UnboundField
from wtforms.widgets import html_params

from app.core.errors import FieldError

UTC_ZONE = ZoneInfo("UTC")
DISPLAY_FORMAT = "%d %b %Y %H:%M %Z"
"""``06 Dec 2026 14:05 IST``: day, month and year without doubt, the zone's abbreviation."""
DISPLAY_FORMAT_SECONDS = "%d %b %Y %H:%M:%S %Z"
INPUT_FORMAT = "%Y-%m-%dT%H:%M"
"""How a form field shows a time: the browser's own date-and-time input (``datetime-local``)."""
TYPED_FORMATS = (INPUT_FORMAT, "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")
"""What a form field reads: the browser's input, or a time typed with a space and seconds."""
_ZONES_KEY = "crm.zone_of"


@lru_cache(maxsize=512)
def zone_named(name: str | None) -> ZoneInfo:
    """The zone called ``name`` (``Asia/Kolkata``); UTC for none or an unknown name."""
    if not name:
        return UTC_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE


def remember_zone(user_id: int, zone_name: str | None) -> None:
    """Note ``user_id``'s zone for the rest of the request (read with the user)."""
    if has_request_context():
        request.environ.setdefault(_ZONES_KEY, {})[user_id] = zone_named(zone_name)


def zone_of_user(user_id: int | None) -> ZoneInfo:
    """``user_id``'s branch's zone: known for the request once read, else one statement."""
    if user_id is None:
        return UTC_ZONE
    known = request.environ.setdefault(_ZONES_KEY, {}) if has_request_context() else {}
    zone = known.get(user_id)
    if zone is None:
        zone = known[user_id] = zones_of_users([user_id]).get(user_id, UTC_ZONE)
    return zone


def zones_of_users(user_ids: Iterable[int | None]) -> dict[int, ZoneInfo]:
    """The zone of each member of staff (their branch's) in one statement; UTC for none."""
    from app.extensions import db
    from app.org.models import Branch, StaffProfile
    from app.security.scoping import UNSCOPED

    wanted = sorted({user_id for user_id in user_ids if user_id is not None})
    if not wanted:
        return {}
    rows = db.session.execute(
        select(StaffProfile.user_id, Branch.timezone)
        .join(Branch, Branch.id == StaffProfile.branch_id)
        .where(StaffProfile.user_id.in_(wanted)),
        execution_options=UNSCOPED,
    )
    zones = {user_id: UTC_ZONE for user_id in wanted}
    zones.update({user_id: zone_named(name) for user_id, name in rows})
    return zones


def zone_of_client(client_id: int | None) -> ZoneInfo:
    """The zone of a client's branch (for messages to the client); UTC if unknown."""
    from app.clients.models import Client
    from app.extensions import db
    from app.org.models import Branch
    from app.security.scoping import UNSCOPED

    if client_id is None:
        return UTC_ZONE
    name = db.session.execute(
        select(Branch.timezone)
        .join(Client, Client.branch_id == Branch.id)
        .where(Client.id == client_id),
        execution_options=UNSCOPED,
    ).scalar_one_or_none()
    return zone_named(name)


def user_zone() -> ZoneInfo:
    """The zone of whoever is asking: the signed-in user, or the member of staff a job acts
    for (``acting_as``); UTC for nobody."""
    from app.security.scoping import current_actor

    actor = current_actor()
    return zone_of_user(actor.user_id if actor is not None else None)


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken as UTC, as the database stores it)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_local(
    moment: datetime | None, zone: ZoneInfo | None = None, seconds: bool = False
) -> str:
    """``moment`` in ``zone`` (the user's by default) with the zone's abbreviation:
    ``06 Dec 2026 14:05 IST``, ``06 Dec 2026 19:35 AEDT`` (``seconds``: ``14:05:09 IST``);
    empty for None. A date without a time is shown as it is."""
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        return moment.isoformat() if isinstance(moment, date) else str(moment)
    shown = as_utc(moment).astimezone(zone or user_zone())
    return shown.strftime(DISPLAY_FORMAT_SECONDS if seconds else DISPLAY_FORMAT)


def format_local_clock(moment: datetime | None, zone: ZoneInfo | None = None) -> str:
    """Only the time of day of ``moment`` in ``zone`` (the user's by default): ``14:05``."""
    if moment is None:
        return ""
    return as_utc(moment).astimezone(zone or user_zone()).strftime("%H:%M")


def local_date(moment: datetime, zone: ZoneInfo | None = None) -> date:
    """The calendar day ``moment`` falls on in ``zone`` (the user's by default)."""
    return as_utc(moment).astimezone(zone or user_zone()).date()


def local_midnight(day: date, zone: ZoneInfo | None = None) -> datetime:
    """The UTC instant the day ``day`` begins in ``zone`` (the user's by default)."""
    return datetime.combine(day, time(), tzinfo=zone or user_zone()).astimezone(UTC)


def local_today(zone: ZoneInfo | None = None) -> date:
    return datetime.now(zone or user_zone()).date()


def to_utc(typed: datetime, zone: ZoneInfo | None = None, field: str | None = None) -> datetime:
    """A wall-clock time typed in ``zone`` (the user's by default) as an aware UTC datetime.
    A time the clocks skip (the hour lost when summer time starts) is refused naming the
    field; of a time that happens twice (the hour repeated when it ends), the first."""
    if typed.tzinfo is not None:
        return typed.astimezone(UTC)
    zone = zone or user_zone()
    moment = typed.replace(tzinfo=zone, fold=0)
    instant = moment.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != typed:
        raise FieldError(
            f"{typed:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks skip it "
            "(summer time starts); choose another time.",
            field,
        )
    return instant


def zone_label(zone: ZoneInfo | None = None) -> str:
    """``Australia/Sydney``: the zone's name as the branch has it."""
    return (zone or user_zone()).key


# ---- screens ---------------------------------------------------------------------------------


class _InYourZone:
    """A form field's description naming the user's zone, worked out when the form is shown."""

    def __init__(self, before: str = "") -> None:
        self.before = before

    def __str__(self) -> str:
        note = f"In your branch's time ({zone_label()})."
        return f"{self.before} {note}".strip()

    def __html__(self) -> Markup:
        return escape(str(self))

    def __bool__(self) -> bool:
        return True


def in_your_zone(before: str = "") -> _InYourZone:
    """A field description (``before``, then the user's zone), written when the form is shown."""
    return _InYourZone(before)


class LocalDateTimeInput:
    """The browser's date-and-time input (``datetime-local``: a wall-clock time without a
    zone) showing the field's text, the user's local time. FAB's picker is a date-only
    calendar that empties a field holding a time when it closes."""

    def __call__(self, field: Any, **kwargs: Any) -> Markup:
        kwargs.setdefault("id", field.id)
        kwargs.setdefault("name", field.name)
        kwargs.setdefault("class", "form-control")
        if field.flags.required:
            kwargs.setdefault("required", True)
        text = html_params(type="datetime-local", step="60", value=field._value(), **kwargs)
        return Markup(f"<input {text}>")


class LocalDateTimeField(DateTimeField):
    """A date and time typed in the user's zone: shown back in it, stored as UTC."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["format"] = list(TYPED_FORMATS)
        if kwargs.get("widget") is None or isinstance(kwargs["widget"], DateTimePickerWidget):
            kwargs["widget"] = LocalDateTimeInput()
        super().__init__(*args, **kwargs)

    def _value(self) -> str:
        if self.raw_data:
            return " ".join(self.raw_data)
        if isinstance(self.data, datetime):
            return as_utc(self.data).astimezone(user_zone()).strftime(INPUT_FORMAT)
        return ""

    def process_formdata(self, valuelist: list[str]) -> None:
        super().process_formdata(valuelist)
        if isinstance(self.data, datetime):
            try:
                self.data = to_utc(self.data, user_zone(), self.name)
            except FieldError as exc:
                self.data = None
                raise ValueError(exc.message) from exc


def zone_free_label(label: Any) -> Any:
    """``Due (UTC)`` -> ``Due``: each value shown carries its own zone."""
    text = str(label)
    return text[: -len(" (UTC)")] if text.endswith(" (UTC)") else label


def _localised_form(form: Any, datetime_columns: set[str]) -> None:
    """Replace each datetime field of a generated form class by a ``LocalDateTimeField``."""
    if form is None:
        return
    for name in datetime_columns:
        unbound = getattr(form, name, None)
        if not isinstance(unbound, UnboundField):
            continue
        if not issubclass(unbound.field_class, DateTimeField):
            continue
        if issubclass(unbound.field_class, LocalDateTimeField):
            continue
        args = list(unbound.args)
        kwargs = dict(unbound.kwargs)
        if args:
            args[0] = zone_free_label(args[0])
        if "label" in kwargs:
            kwargs["label"] = zone_free_label(kwargs["label"])
        description = str(kwargs.get("description") or "")
        if "UTC" in description:
            description = ""
        kwargs["description"] = in_your_zone(description)
        kwargs.pop("format", None)
        setattr(form, name, LocalDateTimeField(*args, **kwargs))


def _typed_in_zone(base: type) -> type:
    """A copy of FAB's filter ``base`` reading a time typed without a zone as the user's."""

    class TypedInZone(base):
        def apply(self, query: Any, value: Any) -> Any:
            typed = set_value_to_type(self.datamodel, self.column_name, value)
            if isinstance(typed, datetime) and typed.tzinfo is None:
                try:
                    value = to_utc(typed)
                except FieldError:  # an hour the clocks skip: read with the offset before it
                    value = typed.replace(tzinfo=user_zone()).astimezone(UTC)
            return super().apply(query, value)

    TypedInZone.__name__ = TypedInZone.__qualname__ = base.__name__
    TypedInZone.fab_filter = base
    return TypedInZone


def fab_filter(flt: Any) -> type:
    """The FAB filter class a list's filter is (or reads in the user's zone)."""
    return getattr(type(flt), "fab_filter", type(flt))


class LocalTimeFilterConverter(SQLAFilterConverter):
    """FAB's filters, a datetime column's searched in the user's zone (as its lists show it)."""

    conversion_table = tuple(
        (kind, [_typed_in_zone(f) for f in found] if kind == "is_datetime" else found)
        for kind, found in SQLAFilterConverter.conversion_table
    )


class LocalTimeColumnsMixin:
    """For a generated screen (FAB ``ModelView``): every datetime column of the model is shown
    on the list and the detail page in the user's zone (``format_local``: a dictionary look-up
    and a conversion per cell), its label loses a ``(UTC)`` note, and the add and edit forms
    read and show it in the user's zone, as do its search filters. A column with its own
    formatter keeps it."""

    def __init__(self, **kwargs: Any) -> None:
        datamodel = self.datamodel
        if datamodel.filter_converter_class is SQLAFilterConverter:
            # this screen's interface only: an API's naive times stay UTC
            datamodel.filter_converter_class = LocalTimeFilterConverter
        # before FAB builds the forms (the search form's labels too)
        self.label_columns = {
            column: zone_free_label(label) if _is_datetime(datamodel, column) else label
            for column, label in (self.label_columns or {}).items()
        }
        super().__init__(**kwargs)
        shown = [*(self.list_columns or []), *(self.show_columns or [])]
        columns = {
            column
            for column in [*shown, *(self.add_columns or []), *(self.edit_columns or [])]
            if "." not in column and _is_datetime(datamodel, column)
        }
        if not columns:
            return
        formatters = dict(self.formatters_columns or {})
        for column in columns:
            formatters.setdefault(column, format_local)
        self.formatters_columns = formatters
        _localised_form(getattr(self, "add_form", None), columns)
        _localised_form(getattr(self, "edit_form", None), columns)


def _is_datetime(datamodel: Any, column: str) -> bool:
    try:
        return bool(datamodel.is_datetime(column))
    except Exception:  # a property or function: not a stored column
        return False


def install_local_time(app: Any) -> None:
    """The Jinja filters ``localtime`` (``06 Dec 2026 14:05 IST``) and ``localclock``
    (``14:05``), and the globals ``user_zone`` and ``local_date``."""
    app.jinja_env.filters["localtime"] = format_local
    app.jinja_env.filters["localclock"] = format_local_clock
    app.jinja_env.globals["user_zone"] = user_zone
    app.jinja_env.globals["local_date"] = local_date

"""Form fields shared by generated screens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask_appbuilder.fields import QuerySelectField
from flask_appbuilder.fieldwidgets import Select2Widget
from wtforms import BooleanField, SelectField
from wtforms.validators import InputRequired, Optional


def choice_field(label: str, choices: tuple[str, ...], required: bool = True) -> SelectField:
    """A drop-down of a model's allowed values, labelled in words."""
    options = [(value, value.replace("_", " ").capitalize()) for value in choices]
    if not required:
        options.insert(0, ("", "—"))
    return SelectField(
        label,
        choices=options,
        widget=Select2Widget(),
        validators=[InputRequired() if required else Optional()],
    )


def flag_field(label: str, description: str = "") -> BooleanField:
    """A tick box for a flag that is never null: unticked means no (FAB would make the field
    a required tick)."""
    return BooleanField(label, default=False, description=description)


MARKETING_CONSENT = flag_field(
    "Marketing consent", "Ticked: they agreed to marketing messages (campaigns reach them)."
)


def optional_relation_field(
    label: str, query_func: Callable[[], Any], blank_text: str
) -> QuerySelectField:
    """A drop-down of related records that may be left blank for the service to fill in
    (e.g. a lead's branch defaults to the agent's own). ``query_func`` lists what the signed-in
    user may pick; its query also goes through row scoping."""
    return QuerySelectField(
        label,
        query_func=query_func,
        get_pk_func=lambda record: record.id,
        allow_blank=True,
        blank_text=blank_text,
        widget=Select2Widget(),
        validators=[Optional()],
    )


def display_choice(value: str | None) -> str:
    """How a stored choice reads on a list or detail page (``web_form`` -> ``Web form``)."""
    return value.replace("_", " ").capitalize() if value else ""


def display_timestamp(value: datetime | None) -> str:
    """A time in the reader's zone, with its abbreviation (``06 Dec 2026 14:05 IST``)."""
    from app.core.localtime import format_local

    return format_local(value)


def display_money(value: Decimal | None) -> str:
    """An amount as lists and pages show it: thousands separated, two decimals."""
    return "" if value is None else f"{value:,.2f}"


def display_units(value: Decimal | None) -> str:
    """A quantity (up to six decimals) without trailing zeros: ``1,500``, ``12.5``."""
    if value is None:
        return ""
    return f"{value:,.6f}".rstrip("0").rstrip(".") or "0"


def display_yes_no(value: bool | None) -> str:
    return "Yes" if value else "No"

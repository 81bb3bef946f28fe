"""Form fields shared by generated screens."""

from __future__ import annotations

from flask_appbuilder.fields import QuerySelectField
from flask_appbuilder.fieldwidgets import Select2Widget
from wtforms import SelectField
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


def optional_relation_field(
    label: str, model: type, order_by: str, blank_text: str
) -> QuerySelectField:
    """A drop-down of related records that may be left blank for the service to fill in
    (e.g. a lead's branch defaults to the agent's own). Its choices go through row scoping."""
    from app.extensions import db

    return QuerySelectField(
        label,
        query_func=lambda: db.session.query(model).order_by(getattr(model, order_by)),
        get_pk_func=lambda record: record.id,
        allow_blank=True,
        blank_text=blank_text,
        widget=Select2Widget(),
        validators=[Optional()],
    )

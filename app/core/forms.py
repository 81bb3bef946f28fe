"""Form fields shared by generated screens."""

from __future__ import annotations

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

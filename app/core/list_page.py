"""Rendering a generated list page with less work per request, the HTML unchanged.

A list's search form sends every search field's HTML to the page (FAB's filter script copies
it when a filter is added). A relation's field is a drop-down of every related record: on the
leads list, the agents (about 200) and the branches. wtforms renders each option through a
``Choice`` (and warns once per option that FAB yields plain tuples) and ``html_params``; here
the options are written straight, each exactly as wtforms writes it, and the ``<select>`` tag
itself is still rendered by the field's own widget.
"""

from __future__ import annotations

from typing import Any

from flask_appbuilder._compat import as_unicode
from flask_appbuilder.fields import QuerySelectField, QuerySelectMultipleField
from flask_appbuilder.widgets import SearchWidget
from markupsafe import Markup, escape


class _WithoutOptions:
    """A field seen by its widget as having no options: the widget renders the empty
    ``<select ...></select>`` with the field's id, name, classes and flags."""

    def __init__(self, field: Any) -> None:
        self._field = field

    def __getattr__(self, name: str) -> Any:
        return getattr(self._field, name)

    def has_groups(self) -> bool:
        return False

    def _iter_choices_normalized(self):
        return iter(())


def _options_html(field: QuerySelectField) -> str:
    """The ``<option>`` tags of ``field``, as wtforms' ``Select.render_option`` writes them."""
    parts = []
    for value, label, selected, *_ in field.iter_choices():
        shown = escape(label or value)
        value = escape(str(value) if isinstance(value, bool) else value)
        if selected:
            parts.append(f'<option selected value="{value}">{shown}</option>')
        else:
            parts.append(f'<option value="{value}">{shown}</option>')
    return "".join(parts)


def render_search_field(field: Any) -> Markup:
    """``field()``, with a relation drop-down's options written directly."""
    if type(field) is not QuerySelectField or isinstance(field, QuerySelectMultipleField):
        return field()
    empty = str(field.meta.render_field(_WithoutOptions(field), {}))
    closing = "</select>"
    if not empty.endswith(closing):  # a widget that is not a plain <select>
        return field()
    return Markup(empty[: -len(closing)] + _options_html(field) + closing)


class CrmSearchWidget(SearchWidget):
    """FAB's search widget (same template, same arguments), its fields rendered with
    ``render_search_field``."""

    def __call__(self, **kwargs: Any) -> Any:
        form = self.template_args["form"]
        dict_filters = self.filters.get_search_filters()
        label_columns, form_fields, search_filters = {}, {}, {}
        for col in self.template_args["include_cols"]:
            label_columns[col] = as_unicode(form[col].label.text)
            form_fields[col] = render_search_field(form[col])
            search_filters[col] = [as_unicode(flt.name) for flt in dict_filters[col]]
        kwargs["label_columns"] = label_columns
        kwargs["form_fields"] = form_fields
        kwargs["search_filters"] = search_filters
        kwargs["active_filters"] = self.filters.get_filters_values_tojson()
        # FormWidget's render, skipping SearchWidget's own field rendering
        return super(SearchWidget, self).__call__(**kwargs)


ROW_KEY = "crm-row-key"
"""Stands for a row's key while its buttons are rendered once for the whole page."""


def row_buttons(
    btn_crud: Any,
    can_show: bool,
    can_edit: bool,
    can_delete: bool,
    pks: list[Any],
    modelview_name: str,
    filters: Any,
) -> Any:
    """A function of a row's key giving its show / edit / delete buttons, as FAB's
    ``lib.btn_crud`` macro renders them. The buttons differ from row to row only by the key in
    their links, so the macro (three URLs, three nested macros and six translations each) is
    rendered once with ``ROW_KEY`` and the key put in per row; the first row is checked
    against the macro itself, and any doubt (keys that are not whole numbers, a route that
    refuses the stand-in, a difference) renders every row with the macro."""

    def each_row(pk: Any) -> Any:
        return btn_crud(can_show, can_edit, can_delete, pk, modelview_name, filters)

    if not pks or not all(type(pk) is int for pk in pks):
        return each_row
    shared = str(btn_crud(can_show, can_edit, can_delete, ROW_KEY, modelview_name, filters))
    first = pks[0]
    if ROW_KEY not in shared or str(each_row(first)) != shared.replace(ROW_KEY, str(first)):
        return each_row
    return lambda pk: Markup(shared.replace(ROW_KEY, str(pk)))

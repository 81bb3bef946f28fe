"""Exporting a generated list screen: the rows of the list as the user sees it (its filters,
its order, its columns and their display), under the user's row scoping.

A list is read in two steps so that no export ever holds more than one batch of records:
first the ordered primary keys of every matching row (one query, the list's own filters and
order), then the records batch by batch, in that order. The keys also give the exact row count
for the progress bar, and a capped first read decides whether the export is small enough to
download at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from flask import current_app, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_appbuilder.widgets import ListWidget
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.datastructures import MultiDict

from app.exports.pii import is_contact_column, mask_contact, mask_identifier

BATCH_ROWS = 1000
LIST_ARGUMENT = re.compile(r"^(_flt_\d+_.+|_oc_.+|_od_.+)$")
"""The URL arguments that make a list what it is: its filters and its order (not its page)."""


class ExportListWidget(ListWidget):
    """FAB's list, with Export CSV / XLSX / PDF buttons beside its paging (main lists only)."""

    template = "exports/list_widget.html"


class ExportableListMixin:
    """Gives a generated list screen its export buttons and ``<route>/export/<fmt>``, which
    exports the rows of the list with its current filters and order. Reading the list is
    enough to export it (``@permission_name("read")``); the export is audited."""

    list_widget = ExportListWidget

    def _list(self, **kwargs: Any) -> Any:
        kwargs.setdefault("export_links", export_links(self))
        return super()._list(**kwargs)

    @expose("/export/<string:fmt>")
    @has_access
    @permission_name("read")
    def export_list(self, fmt: str):
        """Download the list (small) or start a background export (large)."""
        from app.exports.services import export_list_response

        return export_list_response(self, fmt, request.args)


def list_arguments(args: Mapping[str, Any]) -> dict[str, list[str]]:
    """The filters and order among ``args`` (a request's MultiDict or stored JSON)."""
    getlist = args.getlist if hasattr(args, "getlist") else lambda k: _as_list(args[k])
    return {key: list(getlist(key)) for key in args if LIST_ARGUMENT.match(key)}


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def export_links(view: Any) -> list[tuple[str, str, str]]:
    """(format, label, URL) of each export button for the list as shown now."""
    from app.exports.writers import FORMATS

    arguments = list_arguments(request.args)
    return [
        (name, fmt.label, url_for(f"{view.endpoint}.export_list", fmt=name, **arguments))
        for name, fmt in FORMATS.items()
    ]


def find_list_view(endpoint: str) -> Any:
    """The registered list screen named ``endpoint`` (for a job that has only the name)."""
    for view in current_app.appbuilder.baseviews:
        if getattr(view, "endpoint", None) == endpoint and isinstance(view, ExportableListMixin):
            return view
    raise LookupError(f"no exportable list screen {endpoint!r}")


@dataclass
class ListExport:
    """One list screen with the filters and order of one request."""

    view: Any
    arguments: dict[str, list[str]]
    filters: Any = None
    order_column: str = ""
    order_direction: str = ""
    words: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return str(self.view.list_title or self.view.endpoint)

    @property
    def record_type(self) -> str:
        return self.view.datamodel.obj.__tablename__

    @property
    def columns(self) -> list[str]:
        return list(self.view.list_columns)

    @property
    def headings(self) -> list[str]:
        labels = self.view.label_columns
        return [str(labels.get(column) or column) for column in self.columns]

    def headings_for(self, fmt: str) -> list[str]:
        """The headings of a file in ``fmt``: a CSV or workbook holds times in UTC (a cell of
        a workbook has no zone), and its time columns say so; a PDF shows each time in the
        reader's zone with its abbreviation."""
        if fmt == "pdf":
            return self.headings
        datamodel = self.view.datamodel
        return [
            f"{heading} (UTC)"
            if "." not in column and datamodel.is_datetime(column) and "UTC" not in heading
            else heading
            for column, heading in zip(self.columns, self.headings, strict=True)
        ]

    def arguments_json(self) -> str:
        return json.dumps(self.arguments, sort_keys=True)


def list_export(view: Any, args: Mapping[str, Any]) -> ListExport:
    """Read the list's filters and order from ``args`` as FAB's own list does (only columns
    the list lets people search and order by count), joined with the view's base filters."""
    arguments = list_arguments(args)
    filters = view.datamodel.get_filters(view.search_columns)
    allowed = filters.get_search_filters()
    words: dict[str, str] = {}
    for key, values in sorted(arguments.items()):
        match = re.match(r"^_flt_(\d+)_(.+)$", key)
        if not match or match[2] not in allowed:
            continue
        column, index = match[2], int(match[1])
        if index >= len(allowed[column]):
            continue
        filters.add_filter_index(column, index, values)
        flt = allowed[column][index]
        label = str(view.label_columns.get(column) or column)
        shown = ", ".join(_filter_value_in_words(view, column, value) for value in values)
        words[label] = f"{str(flt.name).lower()} {shown}".strip()
    order_column, order_direction = view.base_order or ("", "")
    for key, values in arguments.items():
        if key == f"_oc_{view.__class__.__name__}" and values[0] in view.order_columns:
            direction = arguments.get(f"_od_{view.__class__.__name__}", ["asc"])[0]
            if direction in ("asc", "desc"):
                order_column, order_direction = values[0], direction
    if order_column:
        label = str(view.label_columns.get(order_column) or order_column)
        way = "ascending" if order_direction == "asc" else "descending"
        words["Order"] = f"{label}, {way}"
    joined = filters.get_joined_filters(view._base_filters)
    return ListExport(view, arguments, joined, order_column, order_direction, words)


def _filter_value_in_words(view: Any, column: str, value: str) -> str:
    """A relation filter's value is a primary key; say what it points at."""
    datamodel = view.datamodel
    if datamodel.is_relation(column) and value:
        try:
            related = datamodel.get_related_interface(column).get(value)
        except Exception:  # a malformed key: show it as typed
            related = None
        if related is not None:
            return str(related)
    return str(value)


def _ids_query(spec: ListExport):
    datamodel = spec.view.datamodel
    # The base interface's apply_all: filters, joins and order (with the key as tie-breaker),
    # without a subclass's loader options, which do not apply to a query of keys.
    query = SQLAInterface.apply_all(
        datamodel,
        datamodel.session.query(datamodel.obj),
        spec.filters,
        spec.order_column,
        spec.order_direction,
    )
    return query.with_entities(datamodel.get_pk())


def first_keys(spec: ListExport, limit: int) -> list[Any]:
    """The keys of at most ``limit`` rows, in the list's order (a capped read, never a COUNT
    of the whole table)."""
    return [row[0] for row in _ids_query(spec).limit(limit)]


def all_keys(spec: ListExport) -> list[Any]:
    return [row[0] for row in _ids_query(spec)]


def _loader_options(spec: ListExport) -> list[Any]:
    datamodel = spec.view.datamodel
    options = []
    for root in {column.split(".", 1)[0] for column in spec.columns}:
        if not datamodel.is_relation(root):
            continue
        attribute = getattr(datamodel.obj, root)
        if datamodel.is_relation_many_to_one(root):
            options.append(joinedload(attribute))
        else:
            options.append(selectinload(attribute))
    return options


def list_rows(
    spec: ListExport,
    keys: Sequence[Any],
    full_contacts: bool,
    on_batch: Callable[[int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[list[Any]]:
    """The rows for ``keys``, ``batch_rows`` records at a time, in the keys' order. A record
    removed since the keys were read is left out. ``on_batch(rows so far)`` after each batch."""
    datamodel = spec.view.datamodel
    model, pk = datamodel.obj, datamodel.get_pk()
    cells = [_cell_reader(spec.view, column, full_contacts) for column in spec.columns]
    options = _loader_options(spec)
    done = 0
    for start in range(0, len(keys), batch_rows):
        batch = keys[start : start + batch_rows]
        records = datamodel.session.query(model).filter(pk.in_(batch)).options(*options).all()
        by_key = {datamodel.get_pk_value(record): record for record in records}
        for key in batch:
            record = by_key.get(key)
            if record is not None:
                yield [read(record) for read in cells]
                done += 1
        del records, by_key
        if on_batch is not None:
            on_batch(done)


def _cell_reader(view: Any, column: str, full_contacts: bool) -> Callable[[Any], Any]:
    """How one column of the list reads in an export: as on the screen (its formatter, masked
    identifiers), except that numbers, dates and times stay values, not text."""
    datamodel = view.datamodel
    model = datamodel.obj
    table = model.__tablename__
    mapped = model.__mapper__.columns.get(column) if "." not in column else None
    pii_kind = mapped.info.get("pii") if mapped is not None else None
    contact = is_contact_column(table, column) and not full_contacts
    formatter = (view.formatters_columns or {}).get(column)

    def read(record: Any) -> Any:
        value = datamodel._get_attr_value(record, column)
        if pii_kind:
            return mask_identifier(pii_kind, value)
        if contact and isinstance(value, str):
            return mask_contact(value)
        if isinstance(value, (Decimal, float, date)) and not isinstance(value, bool):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and formatter is None:
            return value
        if formatter is not None:
            return formatter(value)
        if isinstance(value, (list, tuple, set)):
            return ", ".join(str(item) for item in value)
        return value

    return read


def arguments_from_json(text: str) -> MultiDict:
    return MultiDict([(k, v) for k, values in json.loads(text or "{}").items() for v in values])

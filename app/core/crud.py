"""Base classes for generated screens and REST APIs that hand their rules to a service.

A desk's view or API names its resource (shared permission name), the service function that
prepares a record before it is saved, and its columns; everything else is Flask-AppBuilder.
Business errors become form messages on screens and JSON 4xx answers on the API, with the
session rolled back so nothing is half-written.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from flask import Response, abort, g, has_request_context, request
from flask_appbuilder import ModelRestApi, ModelView, expose, has_access
from flask_appbuilder.api.convert import Model2SchemaConverter
from flask_appbuilder.exceptions import DatabaseException
from flask_appbuilder.models.filters import BaseFilter, Filters
from flask_appbuilder.models.sqla.interface import SQLAInterface
from marshmallow import fields, validate
from sqlalchemy import BigInteger, CheckConstraint, Integer, Table, false, inspect, select
from sqlalchemy.exc import DataError, IntegrityError

from app.core.audit import record_rejection
from app.core.errors import ConflictError, DomainError, FieldError, NotFound
from app.core.list_page import CrmSearchWidget
from app.core.listing import (
    LIST_COUNT_CAP,
    capped_count,
    count_from_keys,
    count_from_page,
    count_limit,
    deep_page_keys,
    page_keys,
    relation_loads,
)
from app.core.localtime import LocalTimeColumnsMixin
from app.exports.lists import ExportableListMixin
from app.security.roles import API_METHOD_ACTIONS, VIEW_METHOD_ACTIONS


def _constraint_columns(table: Table, name: str | None) -> list[str]:
    """The columns of ``table``'s constraint or index called ``name`` (a CHECK's columns are
    those its SQL names)."""
    for constraint in [*table.constraints, *table.indexes]:
        if name and constraint.name == name:
            if isinstance(constraint, CheckConstraint):
                sql = str(constraint.sqltext)
                return [column.name for column in table.columns if column.name in sql]
            return [column.name for column in constraint.columns]
    return []


def integrity_refusal(exc: IntegrityError, model: type) -> DomainError:
    """A database constraint's refusal in the user's words, naming the field at fault: a
    duplicate is a 409, a missing value, unknown reference or broken rule a 422."""
    table = model.__table__
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    text = str(orig)
    if diag is not None:  # PostgreSQL: the SQLSTATE and the constraint's name
        code, name, column = getattr(orig, "pgcode", None), diag.constraint_name, diag.column_name
        # "Key (code)=(B1) already exists.": the columns, also of an unnamed unique constraint
        keyed = re.match(r"Key \(([^)]+)\)=", diag.message_detail or "")
        columns = (
            [column]
            if column
            else [c.strip() for c in keyed.group(1).split(",")]
            if keyed
            else _constraint_columns(table, name)
        )
        kind = {"23505": "unique", "23502": "not_null", "23503": "foreign_key"}.get(code, "check")
    else:  # SQLite: "UNIQUE constraint failed: branch.code", "CHECK constraint failed: ck_x"
        head, _, detail = text.partition(" constraint failed: ")
        kind = {"UNIQUE": "unique", "NOT NULL": "not_null", "FOREIGN KEY": "foreign_key"}.get(
            head.strip(), "check"
        )
        names = [part.strip() for part in detail.split(",") if part.strip()]
        columns = [n.split(".", 1)[1] for n in names if "." in n] or _constraint_columns(
            table, names[0] if names else None
        )
    field = columns[0] if columns else None
    record = table.name.replace("_", " ")
    if kind == "unique":
        return ConflictError(f"is already used by another {record}.", field)
    if kind == "not_null":
        return FieldError("is required.", field)
    if kind == "foreign_key":
        return FieldError("refers to a record that does not exist.", field)
    return FieldError(f"is not allowed for a {record}.", field)


class CrmSQLAInterface(SQLAInterface):
    """FAB's data interface, rolling back when a business rule stops a flush; a constraint the
    database enforces on an edit or delete is refused in words, naming the field. A list page
    costs a fixed number of statements at any size (see app.core.listing). An id that is not a
    whole number the key column can hold (``/show/99999999999999999999``, ``abc``) finds
    nothing (404) instead of failing in the database."""

    list_relations: tuple[str, ...] = ()
    """Related records a list shows (its relation columns, and those its properties read):
    loaded with the page. Set by the screen that lists them."""

    show_relations: tuple[str, ...] = ()
    """Related records a detail page shows: loaded with the record. Set by its screen."""

    def __init__(self, obj: type, session: Any = None, list_relations: tuple[str, ...] = ()):
        super().__init__(obj, session)
        self.list_relations = tuple(list_relations)
        self._related_interfaces: dict[str, SQLAInterface] = {}

    def get_related_interface(self, col_name: str) -> SQLAInterface:
        """The interface of the model ``col_name`` refers to, made once: FAB made a new one
        (walking the model's mapper) for every option of a search drop-down, 200 on the leads
        list's agent filter. It holds no request state: its session is the scoped one."""
        related = self._related_interfaces.get(col_name)
        if related is None:
            related = self._related_interfaces[col_name] = super().get_related_interface(col_name)
        return related

    def get(
        self,
        id: Any,
        filters: Any = None,
        select_columns: list[str] | None = None,
        outer_default_load: bool = False,
    ) -> Any:
        """FAB's read of one record, with the related records its detail page shows loaded in
        the same statement instead of one statement each. An id no key of this table could hold
        (text, a number beyond the column) finds nothing instead of failing in the database."""
        if not self.is_pk_composite() and not _storable_key(self.obj, id):
            return None
        if select_columns or not self.show_relations or self.is_pk_composite():
            return super().get(id, filters, select_columns, outer_default_load)
        by_key = filters.copy() if filters else Filters(self.filter_converter_class, self)
        by_key.add_filter(self.get_pk_name(), self.FilterEqual, id)
        query = self.session.query(self.obj).options(*relation_loads(self.obj, self.show_relations))
        return self.apply_all(query, by_key).one_or_none()

    def query(
        self,
        filters: Any = None,
        order_column: str = "",
        order_direction: str = "",
        page: int | None = None,
        page_size: int | None = None,
        select_columns: list[str] | None = None,
        outer_default_load: bool = False,
    ) -> tuple[int, list[Any]]:
        """FAB's list query with the related records loaded with the page and a capped count
        (read only when the page does not tell it). A page past the first is read as a
        deferred join (see app.core.listing.page_keys)."""
        base = self.session.query(self.obj)
        relations = self.list_relations
        if select_columns and any(self.is_property_or_function(c) for c in select_columns):
            # A property may read any column (a masked identifier reads the encrypted one): the
            # rows are read whole, or each would be completed with one statement per row.
            relations, select_columns = tuple(select_columns), None
        key = self.get_pk_name()
        single_key = isinstance(key, str)
        if page_size and not order_column and single_key:  # pages need a stable order
            order_column, order_direction = key, "asc"
        counted_keys = None
        if page and page_size and single_key and page * page_size >= LIST_COUNT_CAP:
            # Past the counted pages: one walk of the index reads this page's keys and those of
            # the pages the pager offers after it, which also tells the count.
            counted_keys = deep_page_keys(
                self, filters, order_column, order_direction, page, page_size
            )
            query = self.apply_all(
                base.filter(getattr(self.obj, key).in_(counted_keys[:page_size])),
                None,
                order_column,
                order_direction,
                None,
                None,
                select_columns,
                outer_default_load,
            )
        elif page and page_size and single_key:
            keys = page_keys(self, filters, order_column, order_direction, page, page_size)
            query = self.apply_all(
                base.join(keys, getattr(self.obj, key) == keys.c.key),
                None,
                order_column,
                order_direction,
                None,
                None,
                select_columns,
                outer_default_load,
            )
        else:
            query = self.apply_all(
                base,
                filters,
                order_column,
                order_direction,
                page,
                page_size,
                select_columns,
                outer_default_load,
            )
        if not select_columns and relations:
            query = query.options(*relation_loads(self.obj, relations))
        rows = query.all()
        items = [getattr(row, self.obj.__name__, row) for row in rows]
        count = count_from_page(len(items), page, page_size)
        if count is None and counted_keys:
            count = count_from_keys(len(counted_keys), page, page_size)
        if count is None:
            counted = self._apply_inner_all(
                base, filters, select_columns=select_columns, aliases_mapping={}
            )
            count = capped_count(counted, count_limit(page, page_size))
        return count, items

    def get_related_obj(self, col_name: str, value: Any) -> Any:
        """The related record a relation filter ("Relation" equal to ...) compares with, known
        by its key alone: the comparison needs only the key, so no statement reads it (FAB
        read it once per use: for the page and again for the count). An unknown key matches
        no row; a malformed one is left to FAB."""
        model = self.get_related_model(col_name)
        (key,) = inspect(model).primary_key
        try:
            value = key.type.python_type(value)
        except (TypeError, ValueError, NotImplementedError):
            return super().get_related_obj(col_name, value)
        return model(**{key.key: value})

    def add(self, item: Any, commit: bool = True) -> None:
        try:
            super().add(item, commit)
        except DomainError:
            self.session.rollback()
            raise

    def edit(self, item: Any, commit: bool = True) -> None:
        try:
            super().edit(item, commit)
        except DomainError:
            self.session.rollback()
            raise
        except DatabaseException as exc:  # FAB has rolled back
            if isinstance(exc.__cause__, IntegrityError):
                raise integrity_refusal(exc.__cause__, self.obj) from exc
            raise

    def delete(self, item: Any, commit: bool = True) -> None:
        try:
            super().delete(item, commit)
        except DomainError:
            self.session.rollback()
            raise
        except DatabaseException as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise ConflictError(
                    "other records still refer to it, so it cannot be deleted."
                ) from exc
            raise


def _storable_key(model: type, value: Any) -> bool:
    """Whether ``value`` could be the single integer primary key of ``model``."""
    columns = inspect(model).primary_key
    if len(columns) != 1 or not isinstance(columns[0].type, Integer):
        return True
    try:
        number = int(str(value).strip())
    except ValueError:
        return False
    bits = 63 if isinstance(columns[0].type, BigInteger) else 31
    return -(2**bits) <= number < 2**bits


def _no_preparation(item: Any) -> Any:
    return item


def run_action(action: Callable[[], Any], record_type: str) -> tuple[Any, str | None]:
    """Run one service call of a screen in its own transaction: (result, None), or (None, the
    refusal) with nothing written and the refusal audited; an unknown row answers 404."""
    from app.extensions import db

    try:
        result = action()
        db.session.commit()
    except NotFound:
        db.session.rollback()
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        record_rejection(record_type, str(exc))
        return None, str(exc)
    return result, None


def filtered_list_url(view: Any, equal_to: dict[str, str]) -> str:
    """The URL of ``view``'s list filtered with "equal to" on each column (FAB's ``_flt_`` args)."""
    from flask import url_for
    from flask_appbuilder.models.sqla.filters import FilterEqual

    filters = {}
    search_filters = view._filters.get_search_filters()
    for column, value in equal_to.items():
        index = next(i for i, f in enumerate(search_filters[column]) if isinstance(f, FilterEqual))
        filters[f"_flt_{index}_{column}"] = value
    return url_for(f"{view.endpoint}.list", **filters)


class NoFileDownloadMixin:
    """FAB's file-column download is unused here (documents are served by the storage
    backend's audited route); answer 404 instead of FAB's 500 on names it cannot parse."""

    @expose("/download/<string:filename>")
    @has_access
    def download(self, filename: str) -> Response:
        abort(404)


class NoButtonsForMissingRoutes:
    """FAB shows an add, edit or delete button when the user holds the permission the method
    maps to; a route this view does not register gets no button (it would only lead to 404)."""

    def get_method_permission(self, method_name: str) -> str:
        if method_name in self.exclude_route_methods:
            return "unavailable"
        return super().get_method_permission(method_name)


class ServiceModelView(LocalTimeColumnsMixin, ExportableListMixin, NoFileDownloadMixin, ModelView):
    """A generated screen whose add and edit go through the desk's service."""

    method_permission_name = VIEW_METHOD_ACTIONS
    prepare: Callable[[Any], Any] = staticmethod(_no_preparation)
    """The service function that cleans and checks an item before it is saved."""
    search_widget = CrmSearchWidget
    """FAB's search form, its relation drop-downs rendered without wtforms' per-option work."""
    show_template = "crm/show.html"
    """FAB's detail page plus a link to the record's history in the audit log."""
    list_relations: tuple[str, ...] = ()
    """Related records the list's properties or formatters read (``"client.branch"``), loaded
    with the page like the relation columns it lists."""

    def __init__(self, **kwargs: Any) -> None:
        self.search_form_extra_fields = {
            **search_by_number_fields(self.datamodel, self.search_columns, self.label_columns),
            **(self.search_form_extra_fields or {}),
        }
        super().__init__(**kwargs)
        if isinstance(self.datamodel, CrmSQLAInterface):
            self.datamodel.list_relations = tuple(
                dict.fromkeys(
                    [
                        *(
                            c
                            for c in self.list_columns
                            if self.datamodel.is_relation(c.split(".")[0])
                        ),
                        *self.list_relations,
                    ]
                )
            )
            self.datamodel.show_relations = tuple(
                c for c in self.show_columns if self.datamodel.is_relation_many_to_one(c)
            )
        self.extra_args = {
            **(self.extra_args or {}),
            "audit_record_type": self.datamodel.obj.__tablename__,
        }

    def pre_add(self, item: Any) -> None:
        _prepare_or_record(self, item)

    def pre_update(self, item: Any) -> None:
        _prepare_or_record(self, item)

    @property
    def _filters(self) -> Any:
        """The list's search filters, of this request only. FAB keeps one ``Filters`` per
        screen and fills it from each request's arguments (``_flt_...``) before querying: with
        gunicorn's threads, two requests to the same list at once would read each other's
        search. Each request gets its own copy of the screen's (empty) filters."""
        screen = self.__dict__.get("_screen_filters")
        if screen is None or not has_request_context():
            return screen
        key = f"crm.filters.{id(self)}"
        own = request.environ.get(key)
        if own is None:
            own = copy.copy(screen)
            own.filters, own.values = list(screen.filters), list(screen.values)
            request.environ[key] = own
        return own

    @_filters.setter
    def _filters(self, filters: Any) -> None:
        self.__dict__["_screen_filters"] = filters


LARGE_TABLES = frozenset({"lead", "client", "document"})
"""Tables too large to offer as a drop-down in a list's search form (a million leads)."""


def search_by_number_fields(
    datamodel: Any, search_columns: list[str] | None, labels: dict[str, str] | None
) -> dict[str, Any]:
    """Search fields for relations to a large table: the record's number, typed, instead of
    FAB's drop-down of every record (which would read and send the whole table)."""
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from wtforms import IntegerField
    from wtforms.validators import Optional

    fields_ = {}
    for column in search_columns or []:
        if "." in column or not datamodel.is_relation_many_to_one(column):
            continue
        if datamodel.get_related_model(column).__tablename__ not in LARGE_TABLES:
            continue
        label = (labels or {}).get(column) or column.replace("_", " ").capitalize()
        fields_[column] = IntegerField(
            f"{label} (number)",
            validators=[Optional()],
            widget=BS3TextFieldWidget(),
            description=f"The {label.lower()}'s number, as on its page.",
        )
    return fields_


def _prepare_or_record(view: Any, item: Any) -> None:
    """Run the service's preparation; a refusal is written to the audit log, then re-raised
    for FAB to show on the form."""
    try:
        type(view).prepare(item)
    except DomainError as exc:
        view.datamodel.session.rollback()  # nothing half-written, and no lock held while recording
        record_rejection(view.datamodel.obj.__tablename__, str(exc))
        raise


INT32 = validate.Range(-(2**31), 2**31 - 1, error="must be a whole number of at most 10 digits.")


class CrmModel2SchemaConverter(Model2SchemaConverter):
    """FAB's model-to-schema converter with two corrections: a foreign-key id is a whole number
    (FAB leaves it untyped, so ``[]`` or ``{}`` reached the database), and an integer column
    refuses numbers the database cannot store instead of failing on insert."""

    def _meta_schema_factory(self, columns, model, class_mixin, parent_schema_name=None):
        schema = super()._meta_schema_factory(columns, model, class_mixin, parent_schema_name)

        class Meta(schema.Meta):
            include_fk = True  # else marshmallow-sqlalchemy drops the id fields declared below

        return type("MetaSchema", (schema,), {"Meta": Meta})

    def _column2field(self, datamodel, column, nested=True, parent_schema_name=None):
        attribute = getattr(datamodel.obj, column.name, None)
        sql_columns = getattr(getattr(attribute, "property", None), "columns", None)
        sql_column = sql_columns[0] if sql_columns else None
        if (
            sql_column is not None
            and sql_column.foreign_keys
            and isinstance(sql_column.type, Integer)
            and not column.children
        ):
            return fields.Integer(strict=True, allow_none=True, validate=INT32)
        field = super()._column2field(datamodel, column, nested, parent_schema_name)
        if (
            sql_column is not None
            and isinstance(field, fields.Integer)
            and isinstance(sql_column.type, Integer)
            and not isinstance(sql_column.type, BigInteger)
        ):
            field.validators.append(INT32)
        return field


class AnswersRefusals:
    """For a ModelRestApi: a business rule's or the database's refusal of a POST, PUT or DELETE
    answers 4xx JSON naming the field (never 500), rolled back and audited."""

    def post_headless(self) -> Response:
        return self._answer_business_errors(super().post_headless)

    def put_headless(self, pk: Any) -> Response:
        return self._answer_business_errors(super().put_headless, pk)

    def delete_headless(self, pk: Any) -> Response:
        return self._answer_business_errors(super().delete_headless, pk)

    def _answer_business_errors(self, call: Callable[..., Response], *args: Any) -> Response:
        table = self.datamodel.obj.__tablename__
        try:
            response = call(*args)
        except (DomainError, IntegrityError, DataError) as exc:
            return self._refused(exc)
        if response.status_code in (400, 422):  # refused by FAB's schema (unknown field, length)
            record_rejection(table, response.get_data(as_text=True))
        return response

    def _refused(self, exc: DomainError | IntegrityError | DataError) -> Response:
        """Roll back, audit, and answer the refusal's 4xx JSON naming the field: a business
        rule's, a database constraint's, or a value the column cannot hold (a check missed it)."""
        self.datamodel.session.rollback()
        table = self.datamodel.obj.__tablename__
        if isinstance(exc, IntegrityError):
            refusal = integrity_refusal(exc, self.datamodel.obj)
            record_rejection(table, str(refusal))
        elif isinstance(exc, DataError):
            column = getattr(getattr(exc.orig, "diag", None), "column_name", None)
            refusal = FieldError("is too large or not of the right kind.", column)
            record_rejection(table, f"{refusal}: {exc.orig}")
        else:
            refusal = exc
            record_rejection(table, str(exc))
        return self.response(refusal.status, **refusal.as_json())


def json_body() -> dict[str, Any]:
    """The request's JSON object; anything else (no body, a list, bad JSON) reads as ``{}``, so
    the desk's service names the missing fields."""
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


class ServiceModelRestApi(AnswersRefusals, ModelRestApi):
    """A REST API whose writes go through the desk's service and never answer 500 for bad input."""

    method_permission_name = API_METHOD_ACTIONS
    model2schemaconverter = CrmModel2SchemaConverter
    prepare: Callable[[Any], Any] = staticmethod(_no_preparation)

    def run_workflow(
        self, action: Callable[[], Any], answer: Callable[[Any], dict], status: int = 200
    ) -> Response:
        """Run a desk's workflow service as one unit of work: commit and answer ``answer(result)``;
        a business or database refusal rolls everything back, is audited and answers its 4xx
        JSON naming the field."""
        try:
            result = action()
            self.datamodel.session.commit()
        except (DomainError, IntegrityError, DataError) as exc:
            return self._refused(exc)
        return self.response(status, **answer(result))

    def pre_add(self, item: Any) -> None:
        type(self).prepare(item)

    def pre_update(self, item: Any) -> None:
        type(self).prepare(item)


def readable_columns(model: type, *, exclude: tuple[str, ...] = (), extra: tuple[str, ...] = ()):
    """Every column of ``model`` a reader may see over the API: encrypted identifiers and secret
    hashes (columns marked ``info={"pii": ...}``) are left out; their masked properties can be
    named in ``extra``."""
    columns = [
        attr.key
        for attr in inspect(model).column_attrs
        if not attr.columns[0].info.get("pii") and attr.key not in exclude
    ]
    return [*columns, *extra]


def visible_through(parent: type) -> type[BaseFilter]:
    """A base filter for a child table that has no row scope of its own: only rows whose
    parent (``parent.id``) the caller can see. The parent's own scope applies inside the
    sub-select, so an agent sees the postings of their clients' wallets and no others."""

    class VisibleThroughParent(BaseFilter):
        name = f"visible {parent.__name__.lower()}"
        arg_name = "visible"

        def apply(self, query: Any, value: Any) -> Any:
            column = getattr(self.datamodel.obj, self.column_name)
            return query.filter(column.in_(select(parent.id)))

    return VisibleThroughParent


class FilterCurrentUser(BaseFilter):
    """Rows of the signed-in user only (session, JWT or API key)."""

    name = "signed-in user"
    arg_name = "me"

    def apply(self, query: Any, value: Any) -> Any:
        user_id = getattr(getattr(g, "user", None), "id", None)
        if user_id is None:
            return query.filter(false())
        return query.filter(getattr(self.datamodel.obj, self.column_name) == user_id)


class ReadOnlyRestApi(ServiceModelRestApi):
    """Records written only by a desk's workflow (journal lines, instalments, stage history...):
    list, get and info; never created, changed or deleted through the generic routes.

    Subclasses name the resource they share with the screens and the same
    ``base_permissions`` as those screens (FAB's permission sync removes from a resource every
    permission one of its classes does not declare)."""

    include_route_methods = {"get", "get_list", "info"}
    allow_browser_login = True

"""Base classes for generated screens and REST APIs that hand their rules to a service.

A desk's view or API names its resource (shared permission name), the service function that
prepares a record before it is saved, and its columns; everything else is Flask-AppBuilder.
Business errors become form messages on screens and JSON 4xx answers on the API, with the
session rolled back so nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, abort, g
from flask_appbuilder import ModelRestApi, ModelView, expose, has_access
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from app.core.audit import record_rejection
from app.core.errors import DomainError
from app.security.roles import API_METHOD_ACTIONS, VIEW_METHOD_ACTIONS


class CrmSQLAInterface(SQLAInterface):
    """FAB's data interface, rolling back when a business rule stops a flush."""

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


def _no_preparation(item: Any) -> Any:
    return item


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


class ServiceModelView(NoFileDownloadMixin, ModelView):
    """A generated screen whose add and edit go through the desk's service."""

    method_permission_name = VIEW_METHOD_ACTIONS
    prepare: Callable[[Any], Any] = staticmethod(_no_preparation)
    """The service function that cleans and checks an item before it is saved."""
    show_template = "crm/show.html"
    """FAB's detail page plus a link to the record's history in the audit log."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra_args = {
            **(self.extra_args or {}),
            "audit_record_type": self.datamodel.obj.__tablename__,
        }

    def pre_add(self, item: Any) -> None:
        _prepare_or_record(self, item)

    def pre_update(self, item: Any) -> None:
        _prepare_or_record(self, item)


def _prepare_or_record(view: Any, item: Any) -> None:
    """Run the service's preparation; a refusal is written to the audit log, then re-raised
    for FAB to show on the form."""
    try:
        type(view).prepare(item)
    except DomainError as exc:
        view.datamodel.session.rollback()  # nothing half-written, and no lock held while recording
        record_rejection(view.datamodel.obj.__tablename__, str(exc))
        raise


class ServiceModelRestApi(ModelRestApi):
    """A REST API whose writes go through the desk's service and never answer 500 for bad input."""

    method_permission_name = API_METHOD_ACTIONS
    prepare: Callable[[Any], Any] = staticmethod(_no_preparation)

    def pre_add(self, item: Any) -> None:
        type(self).prepare(item)

    def pre_update(self, item: Any) -> None:
        type(self).prepare(item)

    def post_headless(self) -> Response:
        return self._answer_business_errors(super().post_headless)

    def put_headless(self, pk: Any) -> Response:
        return self._answer_business_errors(super().put_headless, pk)

    def delete_headless(self, pk: Any) -> Response:
        return self._answer_business_errors(super().delete_headless, pk)

    def _answer_business_errors(self, call: Callable[..., Response], *args: Any) -> Response:
        try:
            response = call(*args)
        except DomainError as exc:
            self.datamodel.session.rollback()
            record_rejection(self.datamodel.obj.__tablename__, str(exc))
            return self.response(exc.status, **exc.as_json())
        except IntegrityError as exc:
            self.datamodel.session.rollback()
            record_rejection(self.datamodel.obj.__tablename__, f"conflict: {exc.orig}")
            return self.response(
                409, message=f"This change conflicts with existing data: {exc.orig}"
            )
        if response.status_code in (400, 422):  # refused by FAB's schema (unknown field, length)
            record_rejection(self.datamodel.obj.__tablename__, response.get_data(as_text=True))
        return response


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
        user = getattr(g, "user", None)
        user_id = getattr(user, "id", None)
        return query.filter(getattr(self.datamodel.obj, self.column_name) == user_id)


class ReadOnlyRestApi(ServiceModelRestApi):
    """Records written only by a desk's workflow (journal lines, instalments, stage history...):
    list, get and info; never created, changed or deleted through the generic routes.

    Subclasses name the resource they share with the screens and the same
    ``base_permissions`` as those screens (FAB's permission sync removes from a resource every
    permission one of its classes does not declare)."""

    include_route_methods = {"get", "get_list", "info"}
    allow_browser_login = True

"""Links from a chart's bar to the list behind it, with FAB's ``_flt_<n>_<column>`` arguments.

FAB numbers a column's filters in the order its converter lists them (``Equal to`` is 3 for a
text column, 0 for a date); the number is looked up on the registered view, never hard-coded.
Ranges use FAB's strict ``Greater than`` / ``Smaller than``, so an inclusive day range
``[first, last]`` becomes ``> first - 1 day`` and ``< last + 1 day`` on a date column, and
``> first 00:00 - 1 microsecond`` and ``< (last + 1 day) 00:00`` on a timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import current_app, url_for
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import (
    FilterEqual,
    FilterGreater,
    FilterIn,
    FilterRelationOneToManyEqual,
    FilterSmaller,
)

from app.core.localtime import fab_filter

Condition = tuple[str, type[BaseFilter], Any]
"""(column, FAB filter class, value); a list value repeats the argument (``In``)."""

EQ, GT, LT, IN, REL = (
    FilterEqual,
    FilterGreater,
    FilterSmaller,
    FilterIn,
    FilterRelationOneToManyEqual,
)

ONE_MICROSECOND = timedelta(microseconds=1)


def _view(endpoint: str) -> Any:
    for view in current_app.appbuilder.baseviews:
        if type(view).__name__ == endpoint:
            return view
    raise LookupError(f"no registered view {endpoint}")


def _argument(value: Any) -> str:
    if isinstance(value, datetime):  # with its offset: a list reads a time without one as local
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    if isinstance(value, date):
        return value.isoformat()
    if value is None:
        return ""
    return str(value)


def list_url(endpoint: str, conditions: Iterable[Condition]) -> str:
    """The URL of ``endpoint``'s list (a registered ModelView's class name) with the conditions."""
    view = _view(endpoint)
    search_filters = view._filters.get_search_filters()
    args: list[tuple[str, str]] = []
    for column, filter_class, value in conditions:
        if column not in search_filters:
            raise LookupError(f"{endpoint} cannot filter on {column} (not in search_columns)")
        index = next(
            i for i, flt in enumerate(search_filters[column]) if fab_filter(flt) is filter_class
        )
        for item in value if isinstance(value, list | tuple) else [value]:
            args.append((f"_flt_{index}_{column}", _argument(item)))
    base = url_for(f"{view.endpoint}.list")
    return f"{base}?{urlencode(args)}" if args else base


def day_range(column: str, first: date | None, last: date | None) -> list[Condition]:
    """An inclusive range of days on a date column (either end may be open)."""
    conditions: list[Condition] = []
    if first is not None:
        conditions.append((column, GT, first - timedelta(days=1)))
    if last is not None:
        conditions.append((column, LT, last + timedelta(days=1)))
    return conditions


def instant_range(column: str, start: datetime | None, end: datetime | None) -> list[Condition]:
    """``start <= t < end`` on a timestamp column (either end may be open)."""
    conditions: list[Condition] = []
    if start is not None:
        conditions.append((column, GT, (start - ONE_MICROSECOND).replace(tzinfo=None)))
    if end is not None:
        conditions.append((column, LT, end.replace(tzinfo=None)))
    return conditions

"""Several related lists of a record's page (its notes, its fees, its schedule...) read in ONE
statement instead of one each.

Each list is a model, a filter and an order. The statement picks the keys of every list with its
position in its own order (a UNION ALL, one branch per list, each from its index), then joins
each list's table on its own branch's keys only (a LEFT JOIN per model), so every row carries
one record of one list. Row scoping applies to each model as to any ORM read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, inspect, literal, select, union_all

from app.extensions import db


@dataclass(frozen=True)
class RelatedList:
    model: type
    where: ColumnElement[bool]
    order_by: tuple[Any, ...]
    options: tuple[Any, ...] = field(default=())
    """Loader options for the records (``joinedload(LoanNote.author)``): many-to-one only, so
    each record stays one row."""


def related_lists(*lists: RelatedList) -> list[list[Any]]:
    """The records of each list, in its order; one statement for all of them."""
    if not lists:
        return []
    models = [spec.model for spec in lists]
    if len(set(models)) != len(models):
        raise ValueError("each related list needs a model of its own")
    keys = union_all(
        *(
            select(
                literal(number).label("list"),
                _key(spec.model).label("key"),
                func.row_number().over(order_by=spec.order_by).label("position"),
            ).where(spec.where)
            for number, spec in enumerate(lists)
        )
    ).subquery()
    query = select(keys.c.list, *models).select_from(keys)
    for number, model in enumerate(models):
        query = query.outerjoin(model, and_(keys.c.list == number, _key(model) == keys.c.key))
    query = query.options(*(option for spec in lists for option in spec.options)).order_by(
        keys.c.list, keys.c.position
    )
    found: list[list[Any]] = [[] for _ in lists]
    for row in db.session.execute(query):
        record = row[1 + row.list]
        if record is not None:
            found[row.list].append(record)
    return found


def _key(model: type) -> Any:
    (key,) = inspect(model).primary_key
    return key

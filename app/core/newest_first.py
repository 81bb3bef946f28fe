"""The newest rows of several selects of different shapes, read in ONE statement.

Each select names its columns and times its rows with a column labelled ``at``. They are read as
a UNION ALL in which each select is ordered by ``at`` and limited on its own (so each reads only
its newest rows, from its index), and the whole is ordered by ``at`` and limited again: a page
of a client's timeline costs one statement however many kinds of event it merges and however
long the history.

A UNION ALL needs the same columns in every branch: each select's columns go into shared slots
by their Python type (its n-th text column into slot ``str_n``, its n-th whole number into
``int_n``...), the slots a select does not use stay NULL, and every row is handed back under
its own select's column names, read as its own columns would have been.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    Numeric,
    Select,
    Text,
    TypeDecorator,
    cast,
    literal,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.types import TypeEngine

from app.core.types import UTCDateTime
from app.extensions import db

SLOT_TYPES: dict[type, TypeEngine] = {
    str: Text(),
    int: BigInteger(),
    Decimal: Numeric(),
    float: Float(),
    bool: Boolean(),
    date: Date(),
    datetime: UTCDateTime(),
}
"""The type of the slots that hold the columns of each Python type."""


@dataclass(frozen=True)
class _Column:
    name: str
    slot: str
    slot_type: TypeEngine
    type: TypeEngine


def newest_first(
    selects: dict[str, Select],
    before: datetime | None,
    limit: int,
    execution_options: dict[str, Any] | None = None,
) -> list[tuple[str, SimpleNamespace]]:
    """Up to ``limit`` rows of all ``selects`` (name -> select) together, newest first, older
    than ``before`` (None: no bound), each with the name of its select; rows of the same moment
    come in the order of ``selects``."""
    if not selects:
        return []
    names = list(selects)
    layouts = [_columns(name, rows) for name, rows in selects.items()]
    slot_types = {c.slot: c.slot_type for layout in layouts for c in layout}
    slots = sorted(slot_types)
    branches = []
    for position, rows in enumerate(selects.values()):
        at = rows.selected_columns["at"]
        if before is not None:
            rows = rows.where(at < before)
        newest = rows.order_by(at.desc()).limit(limit).subquery()
        filled = {c.slot: newest.c[c.name] for c in layouts[position]}
        branches.append(
            select(
                literal(position).label("source"),
                newest.c.at,
                *(filled.get(slot, cast(null(), slot_types[slot])).label(slot) for slot in slots),
            )
        )
    merged = union_all(*branches).subquery()
    # The union's columns read as their slot's type (not as the first branch's column).
    query = (
        select(
            merged.c.source,
            type_coerce(merged.c.at, UTCDateTime()).label("at"),
            *(type_coerce(merged.c[slot], slot_types[slot]).label(slot) for slot in slots),
        )
        .order_by(merged.c.at.desc(), merged.c.source)
        .limit(limit)
    )
    dialect = db.session.get_bind().dialect
    found = []
    for row in db.session.execute(query, execution_options=execution_options or {}):
        values = {
            column.name: _as_read(row._mapping[column.slot], column.type, dialect)
            for column in layouts[row.source]
        }
        found.append((names[row.source], SimpleNamespace(at=row.at, **values)))
    return found


def _columns(name: str, rows: Select) -> list[_Column]:
    """Where each column of a select goes in the union (``at`` has a column of its own)."""
    keys = list(rows.selected_columns.keys())
    if "at" not in keys or len(set(keys)) != len(keys):
        raise ValueError(
            f"the {name!r} select must have one column labelled 'at' and name each column "
            f"once (label the others), not {keys}"
        )
    taken: Counter[type] = Counter()
    columns = []
    for column in rows.selected_columns:
        python_type = _python_type(column.type)
        if python_type not in SLOT_TYPES or (column.key == "at" and python_type is not datetime):
            raise ValueError(
                f"column {column.key!r} of the {name!r} select has no type that can be merged "
                "('at' must be a timestamp; give a literal or NULL its type)"
            )
        if column.key != "at":
            taken[python_type] += 1
            slot = f"{python_type.__name__.lower()}_{taken[python_type]}"
            columns.append(_Column(column.key, slot, SLOT_TYPES[python_type], column.type))
    return columns


def _python_type(column_type: TypeEngine) -> type | None:
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    try:
        return column_type.python_type
    except NotImplementedError:
        return None


def _as_read(value: Any, column_type: TypeEngine, dialect: Any) -> Any:
    """A slot's value as the select's own column would have read it: a decimal with the
    column's scale (SQLite keeps none), a decorated type (an encrypted text) converted."""
    if value is None:
        return None
    if isinstance(column_type, TypeDecorator):
        return column_type.process_result_value(value, dialect)
    scale = getattr(column_type, "scale", None)
    if isinstance(value, Decimal) and scale is not None:
        return value.quantize(Decimal(1).scaleb(-scale))
    return value

"""Reading one page of a generated list fast, whatever the size of the table.

Flask-AppBuilder counts every matching row for each page (``SELECT count(*)``), which on a
million leads costs more than the page itself, and loads each related record shown in a row
one by one. Here a page is read with a fixed number of statements:

- the rows of the page, with the related records the list shows loaded in the same statement
  (many-to-one) or in one more (collections);
- a count only when the page itself does not tell it (a short page ends the list), and then a
  capped one: the rows are counted up to a few pages past the one shown, never more
  (``LIST_COUNT_CAP`` at least), so "Record Count" reads "10,000+" on a large list while
  paging forward and back keeps working;
- a page past the first as a deferred join: the keys of the page are picked first, reading
  only the (order column, key) index of the matching rows, then only those rows are read
  whole. A plain OFFSET would read every skipped row and its related records.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import joinedload, selectinload

LIST_COUNT_CAP = 10_000
"""A list counts its rows exactly up to this many; beyond, it shows "10,000+"."""
PAGES_AHEAD = 3
"""How many pages past the one shown a capped count reaches (the pager shows three)."""


class RowCount(int):
    """The number of rows of a list: exact, or (``more``) a lower bound shown as "10,000+".

    As an ``int`` it is the number of rows the pager may offer: the lower bound plus one, so
    the page after the last counted one still has a link."""

    more: bool = False

    def __new__(cls, value: int, more: bool = False) -> RowCount:
        count = super().__new__(cls, value + 1 if more else value)
        count.more = more
        return count

    def __str__(self) -> str:
        return f"{int(self) - 1:,}+" if self.more else str(int(self))

    __html__ = __str__


def count_limit(page: int | None, page_size: int | None) -> int:
    """How many rows a capped count reads for ``page`` (0-based) of ``page_size`` rows."""
    return max(LIST_COUNT_CAP, ((page or 0) + 1 + PAGES_AHEAD) * (page_size or 0))


def capped_count(query: Any, limit: int) -> RowCount:
    """Count the rows of ``query`` (a Query of one entity, no order), up to ``limit``."""
    counted = query.limit(limit + 1).count()
    return RowCount(limit, more=True) if counted > limit else RowCount(counted)


def count_from_page(rows: int, page: int | None, page_size: int | None) -> RowCount | None:
    """The exact count when the page read tells it: no paging, or a short, non-empty page
    (or an empty first page)."""
    if not page_size:
        return RowCount(rows)
    if rows < page_size and (rows or not page):
        return RowCount((page or 0) * page_size + rows)
    return None


def page_keys(
    datamodel: Any,
    filters: Any,
    order_column: str,
    order_direction: str,
    page: int,
    page_size: int,
) -> Any:
    """The keys of one page of ``datamodel``'s list, as a subquery (column ``key``): the
    list's filters, order (key as tie-breaker) and offset over the key alone, so that an
    index of (order column, key), or (scope column, order column, key), answers it without
    reading the rows skipped."""
    key = getattr(datamodel.obj, datamodel.get_pk_name()).label("key")
    keys = datamodel._apply_inner_all(
        datamodel.session.query(key),
        filters,
        order_column,
        order_direction,
        page,
        page_size,
        None,
        aliases_mapping={},
    )
    return keys.subquery("page_keys")


def relation_loads(model: type, columns: list[str] | tuple[str, ...]) -> list[Any]:
    """Loader options that bring the related records named by ``columns`` (``"branch"``,
    ``"client.branch"``) with the page: joined for many-to-one, one more statement per
    collection, instead of one statement per row."""
    from sqlalchemy import inspect

    options = []
    seen: set[str] = set()
    for column in columns:
        path = column.split(".")
        mapper = inspect(model)
        loader = None
        for depth, name in enumerate(path):
            relationship = mapper.relationships.get(name)
            if relationship is None:
                break
            attribute = getattr(mapper.class_, name)
            collection = relationship.uselist
            strategy = selectinload if collection else joinedload
            loader = (
                strategy(attribute)
                if loader is None
                else getattr(loader, strategy.__name__)(attribute)
            )
            key = ".".join(path[: depth + 1])
            if key not in seen:
                seen.add(key)
                options.append(loader)
            mapper = relationship.mapper
    return options


def trigram_index(table: str, column: str) -> Any:
    """A pg_trgm GIN index on ``column``, for the lists' "contains" searches (``ILIKE '%x%'``);
    PostgreSQL only (other databases scan, as before)."""
    from sqlalchemy import Index

    return Index(
        f"ix_{table}_{column}_trgm",
        column,
        postgresql_using="gin",
        postgresql_ops={column: "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql")

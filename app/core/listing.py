"""Reading one page of a generated list fast, whatever the size of the table.

Flask-AppBuilder counts every matching row for each page (``SELECT count(*)``), which on a
million leads costs more than the page itself, and loads each related record shown in a row
one by one. Here a page is read with a fixed number of statements:

- the rows of the page, with the related records the list shows loaded in the same statement
  (many-to-one) or in one more (collections);
- a count only when the page itself does not tell it (a short page ends the list), and then a
  capped one: the rows are counted up to a few pages past the one shown, never more
  (``LIST_COUNT_CAP`` at least), so "Record Count" reads "1,000+" on a large list while
  paging forward and back keeps working;
- a page past the first as a deferred join: the keys of the page are picked first, reading
  only the (order column, key) index of the matching rows, then only those rows are read
  whole. A plain OFFSET would read every skipped row and its related records. Past the
  counted pages (``LIST_COUNT_CAP``) the keys are read on their own, with those of the pages
  the pager offers after it, and their number is the count: the index is walked once, not
  once for the page and again for the count.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import joinedload, selectinload

LIST_COUNT_CAP = 1_000
"""A list counts its rows exactly up to this many; beyond, it shows "1,000+". Counting a
search's matches visits each matching row (a name fragment's trigram matches are checked on
the table), so the cap is what a count costs: 10,000 made a name search's count cost twenty
times its page."""
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


def count_from_keys(keys: int, page: int, page_size: int) -> RowCount:
    """The count told by a deep page's key read (``deep_page_keys``): exact when it found fewer
    keys than it asked for, else a lower bound reaching the pages the pager offers."""
    ahead = keys_ahead(page_size)
    offset = page * page_size
    if keys > ahead:
        return RowCount(offset + ahead, more=True)
    return RowCount(offset + keys)


def keys_ahead(page_size: int) -> int:
    """How many keys a deep page reads: its own and the pages the pager offers after it."""
    return (1 + PAGES_AHEAD) * page_size


def deep_page_keys(
    datamodel: Any,
    filters: Any,
    order_column: str,
    order_direction: str,
    page: int,
    page_size: int,
) -> list[Any]:
    """The keys of page ``page`` and of the ``PAGES_AHEAD`` pages after it (one more to tell
    whether the list goes on), in the list's order: one statement over the (order column, key)
    index. The capped count of a page past ``LIST_COUNT_CAP`` would walk the same skipped
    entries a second time."""
    key = getattr(datamodel.obj, datamodel.get_pk_name()).label("key")
    keys = datamodel._apply_inner_all(
        datamodel.session.query(key),
        filters,
        order_column,
        order_direction,
        None,
        None,
        None,
        aliases_mapping={},
    )
    rows = keys.offset(page * page_size).limit(keys_ahead(page_size) + 1).all()
    return [row.key for row in rows]


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

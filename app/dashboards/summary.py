"""Dashboard summaries: rows counted per day and per month, kept by every write.

The dashboards read these tables instead of the million leads, applications and instalments
they count. A summary row is a *change*: every write of a counted row appends, in the same
transaction, rows that add the new state and take away the old state of what it changed or
deleted (a lead's status move is -1 on the old status, +1 on the new), at two grains, the UTC
day (``grain = 'd'``) and its month (``'m'``, ``day`` the month's first day). A sum over the
rows is therefore exact at every moment, with no lock and no hot counter row: writers only
insert. The ``compact-summaries`` job (every minute) folds the appended rows of each key into
one, which keeps reads short; ``flask crm rebuild-summaries`` builds the tables anew from the
rows they count.

Why appended changes rather than counters updated in place: two agents adding leads in the same
branch on the same day would queue on one counter row until each other's transaction ends (an
import holds its rows for a minute), and a job that recounts every minute would leave the
dashboard a minute behind. Appending is exact at once and contends on nothing.

How a change is seen: ORM flushes by session events (the old state is read from the database
before the flush, the new after it); a bulk UPDATE or DELETE through the session (the arrears
job's, say) by reading the rows it matches before and after it runs; a bulk INSERT of leads (an
import) from its parameters. A summary is declared by a :class:`Summary`: its table, the grouping
columns, the measures, and which columns of which models it depends on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    Index,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    event,
    func,
    insert,
    inspect,
    literal_column,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from app.leads.models import LEAD_STATUSES, Lead
from app.security.scoping import scoped

Contribution = dict
"""(day, *dims) -> tuple of measures: what a set of counted rows adds to a summary."""


@dataclass(frozen=True)
class Summary:
    """One summary table and what it counts."""

    model: type
    dims: tuple[str, ...]
    """Grouping columns after ``grain`` and ``day``."""
    measures: tuple[str, ...]
    """Integer columns summed (counts, and money as cents)."""
    watched: Mapping[type, tuple[str, ...]]
    """Model -> its columns a change of which changes what the summary counts."""
    rows: Callable[[str], Any]
    """(dialect) -> ``select(day, *dims, *measures)`` grouped by day and dims, no WHERE."""
    affected: Callable[[type, Iterable[int]], Any]
    """(model, ids) -> the WHERE that picks the counted rows those objects take part in."""
    lock: int
    """Advisory lock of its compaction (one at a time per table)."""
    from_values: Callable[[list[dict]], Contribution] | None = None
    """What rows about to be bulk-inserted into the first watched model add; without it such an
    insert is refused."""
    counted: Any = None
    """The key of the counted rows (needed with ``links``)."""
    links: Mapping[type, Callable[[Any], Iterable[int]]] = field(default_factory=dict)
    """Model -> the keys of the counted rows one of its objects counts in, for a model whose
    rows decide a counted row's group without being counted (a client is a holder while one
    of its positions holds something). Such changes are resolved to the counted rows before
    the write, so a deleted position still names its client."""

    @property
    def key(self) -> tuple[str, ...]:
        return ("grain", "day", *self.dims)

    @property
    def table(self):
        return self.model.__table__

    def contribution(self, session: Session, where) -> Contribution:
        """What the rows matching ``where`` add now, read from the database (unscoped: the
        summary counts every row, the reader's scope applies when reading it)."""
        found = session.connection().execute(self.rows(_dialect(session)).where(where))
        width = len(self.dims) + 1
        return {tuple(row[:width]): tuple(int(v or 0) for v in row[width:]) for row in found}


SUMMARIES: list[Summary] = []


def register(summary: Summary) -> Summary:
    SUMMARIES.append(summary)
    return summary


def among(column, ids: Iterable[int]):
    """``column IN ids``, as one bound value when there are many (an array on PostgreSQL, JSON
    on SQLite), so a job touching 100,000 rows sends one parameter, not 100,000."""
    ids = sorted(set(ids))
    if len(ids) <= 200:
        return column.in_(ids)
    return _Among(column, ids)


class _Among(ColumnElement):
    inherit_cache = False
    type = Boolean()

    def __init__(self, column, ids: list[int]) -> None:
        self.column, self.ids = column, ids


@compiles(_Among, "postgresql")
def _among_postgresql(element, compiler, **kw):
    ids = bindparam(None, element.ids, type_=ARRAY(Integer))
    return compiler.process(element.column == any_(ids), **kw)


@compiles(_Among)
def _among_json(element, compiler, **kw):
    values = select(literal_column("value")).select_from(
        func.json_each(bindparam(None, json.dumps(element.ids), type_=String))
    )
    return compiler.process(element.column.in_(values), **kw)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def utc_day(column, dialect: str):
    """The UTC day of a timestamp column, in SQL."""
    if dialect == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return type_coerce(func.date(column), Date)


def summary_indexes(name: str, *people: str) -> tuple:
    """The indexes of a summary table ``name``: by grain and day, by each of the ``people``
    columns (``branch_id``, ``agent_id``...) with grain and day, and the partial index on the
    rows not folded yet."""
    return (
        Index(f"ix_{name}_grain_day", "grain", "day"),
        *(Index(f"ix_{name}_{c.removesuffix('_id')}_grain_day", c, "grain", "day") for c in people),
        Index(
            f"ix_{name}_pending",
            "compacted",
            postgresql_where=text("NOT compacted"),
            sqlite_where=text("compacted = 0"),
        ),
    )


def people_clauses(model, branch: int | None, agent: int | None, agent_column: str) -> list:
    """A dashboard's branch and person filters on a summary (``None``: not filtered)."""
    where = []
    if branch is not None:
        where.append(model.branch_id == branch)
    if agent is not None:
        where.append(getattr(model, agent_column) == agent)
    return where


def lead_key(row: dict, now: datetime) -> tuple[date, int, int]:
    """(UTC day created, branch, agent or 0) of a lead about to be inserted from ``row``."""
    created = row.get("created_at") or now
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created.astimezone(UTC).date(), row["branch_id"], row.get("assigned_agent_id") or 0


def cents(column, dialect: str):
    """A money column as whole cents, in SQL (SQLite keeps numbers as floats)."""
    if dialect == "postgresql":
        return cast(column * 100, BigInteger)
    return cast(func.round(column * 100), BigInteger)


def record_change(
    session: Session, summary: Summary, before: Contribution, after: Contribution
) -> int:
    """Append the difference ``after - before`` at both grains; returns the rows written."""
    width = len(summary.measures)
    per_key: dict[tuple, list[int]] = {}
    for sign, part in ((-1, before), (1, after)):
        for (day, *dims), values in part.items():
            for grain, at in (("d", day), ("m", day.replace(day=1))):
                sums = per_key.setdefault((grain, at, *dims), [0] * width)
                for i, value in enumerate(values):
                    sums[i] += sign * value
    rows = [
        {
            **dict(zip(summary.key, key, strict=True)),
            **dict(zip(summary.measures, sums, strict=True)),
            "compacted": False,
        }
        for key, sums in sorted(per_key.items(), key=lambda item: repr(item[0]))
        if any(sums)
    ]
    if rows:
        session.connection().execute(insert(summary.table), rows)
    return len(rows)


# ---- session events ---------------------------------------------------------------------------

_TRACKED_ATTRS: dict[tuple[type, tuple[str, ...]], tuple[str, ...]] = {}


def _tracked_attrs(cls: type, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The columns, and the relationships that set them (``lead.assigned_agent = user``)."""
    key = (cls, columns)
    if key not in _TRACKED_ATTRS:
        mapper = inspect(cls)
        relations = tuple(
            rel.key
            for rel in mapper.relationships
            if {c.key for c in rel.local_columns} & set(columns)
        )
        _TRACKED_ATTRS[key] = (*columns, *relations)
    return _TRACKED_ATTRS[key]


def _changed(obj, attrs: tuple[str, ...]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in attrs)


def _before_flush(session: Session, flush_context, instances) -> None:
    if not (session.dirty or session.new or session.deleted):
        return
    pending = []
    for summary in SUMMARIES:
        old, new = [], []
        for cls, columns in summary.watched.items():
            attrs = _tracked_attrs(cls, columns)
            ids = {
                obj.id
                for obj in session.dirty
                if isinstance(obj, cls) and obj.id is not None and _changed(obj, attrs)
            }
            ids |= {obj.id for obj in session.deleted if isinstance(obj, cls) and obj.id}
            fresh = [obj for obj in session.new if isinstance(obj, cls)]
            link = summary.links.get(cls)
            if link is not None:
                counted = set(_counted_ids(session, summary, cls, ids)) if ids else set()
                for obj in [
                    *fresh,
                    *(o for o in session.dirty if isinstance(o, cls) and o.id in ids),
                ]:
                    counted.update(key for key in link(obj) if key is not None)
                if counted:
                    old.append(among(summary.counted, counted))
                continue
            if ids:
                old.append(summary.affected(cls, ids))
            if fresh:
                new.append((cls, fresh))
        if old or new:
            before = summary.contribution(session, or_(*old)) if old else {}
            pending.append((summary, old, new, before))
    if pending:
        session.info.setdefault("crm.summaries", []).extend(pending)


def _count_write(session: Session, *args) -> None:
    session.info["crm.writes"] = session.info.get("crm.writes", 0) + 1


def _counted_ids(session: Session, summary: Summary, cls: type, ids) -> list[int]:
    """The counted rows that objects of a linked model take part in, as they are now."""
    query = select(summary.counted).where(summary.affected(cls, ids)).distinct()
    return list(session.connection().execute(query).scalars())


def _after_flush(session: Session, flush_context) -> None:
    _count_write(session)
    for summary, old, new, before in session.info.pop("crm.summaries", None) or ():
        where = list(old)
        for cls, objs in new:
            ids = [obj.id for obj in objs if obj.id is not None]
            if ids:
                where.append(summary.affected(cls, ids))
        after = summary.contribution(session, or_(*where)) if where else {}
        record_change(session, summary, before, after)


def _statement_ids(state: ORMExecuteState, mapper) -> list[int]:
    """The primary keys of the rows a bulk UPDATE/DELETE matches (a superset when the
    reader's scope narrows it further: rows it leaves alone count the same before and after)."""
    pk = mapper.primary_key[0]
    params = state.parameters
    where = state.statement.whereclause
    if where is None and isinstance(params, list) and params and pk.key in params[0]:
        return [row[pk.key] for row in params]
    query = select(pk) if where is None else select(pk).where(where)
    return list(state.session.connection().execute(query).scalars())


def _on_bulk_statement(state: ORMExecuteState):
    if not (state.is_update or state.is_delete or state.is_insert):
        return None
    _count_write(state.session)
    mapper = state.bind_mapper
    if mapper is None:
        return None
    cls = mapper.class_
    concerned = [
        (summary, watched, columns)
        for summary in SUMMARIES
        for watched, columns in summary.watched.items()
        if issubclass(cls, watched)
    ]
    if not concerned:
        return None
    if state.is_insert:
        params = state.parameters
        rows = params if isinstance(params, list) else [params] if params else []
        for summary, watched, _columns in concerned:
            primary = next(iter(summary.watched))
            if watched is primary and summary.from_values is not None and rows:
                record_change(state.session, summary, {}, summary.from_values(rows))
            elif watched is primary:
                raise RuntimeError(
                    f"a bulk INSERT into {cls.__tablename__} is not counted by the "
                    f"{summary.table.name} summary; add those rows through the ORM, or "
                    "rebuild the summaries"
                )
        return None
    values = getattr(state.statement, "_values", None) or {}
    names = {getattr(k, "key", str(k)) for k in values}
    if isinstance(state.parameters, list) and state.parameters:
        names |= set(state.parameters[0])
    moved = [
        (summary, watched)
        for summary, watched, columns in concerned
        if state.is_delete or names & set(columns)
    ]
    if not moved:
        return None
    ids = _statement_ids(state, mapper)
    if not ids:
        return None
    before = []
    for summary, watched in moved:
        where = summary.affected(watched, ids)
        if watched in summary.links:
            where = among(summary.counted, _counted_ids(state.session, summary, watched, ids))
        before.append((summary, where, summary.contribution(state.session, where)))
    result = state.invoke_statement()
    for summary, where, old in before:
        record_change(state.session, summary, old, summary.contribution(state.session, where))
    return result


_installed = False


def install_summary_hooks() -> None:
    global _installed
    if _installed:
        return
    import app.campaigns.summary  # noqa: F401  (registers the campaign attribution summary)
    import app.dashboards.client_summary  # noqa: F401  (registers the client summaries)
    import app.dashboards.desk_summary  # noqa: F401  (registers the billing and forex summaries)
    import app.dashboards.lending_summary  # noqa: F401  (registers the lending summaries)

    event.listen(Session, "before_flush", _before_flush)
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "do_orm_execute", _on_bulk_statement)
    for name in ("after_commit", "after_soft_rollback"):
        event.listen(Session, name, _count_write)
    _installed = True


def writes(session: Session) -> int:
    """How many writes (flushes, bulk statements, commits, rollbacks) the session has seen: a
    reader caching figures within a request keys them on it, so a change is never hidden."""
    return session.info.get("crm.writes", 0)


# ---- reading ----------------------------------------------------------------------------------


def period_clause(model, date_from: date | None, date_to: date | None):
    """The summary rows of the period (UTC days, both ends included): whole months from the
    month rows, the days at either end that do not fill a month from the day rows."""
    s = model
    if date_from is None and date_to is None:
        return s.grain == "m"
    after = date_to + timedelta(days=1) if date_to is not None else None
    first_full = date_from if date_from is None or date_from.day == 1 else _next_month(date_from)
    end_full = after.replace(day=1) if after is not None else None
    if first_full is not None and end_full is not None and first_full >= end_full:
        return and_(s.grain == "d", s.day >= date_from, s.day < after)  # no whole month
    months = [s.grain == "m"]
    if first_full is not None:
        months.append(s.day >= first_full)
    if end_full is not None:
        months.append(s.day < end_full)
    parts = [and_(*months)]
    if date_from is not None and date_from < first_full:
        parts.append(and_(s.grain == "d", s.day >= date_from, s.day < first_full))
    if after is not None and end_full < after:
        parts.append(and_(s.grain == "d", s.day >= end_full, s.day < after))
    return or_(*parts)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


# ---- compaction and rebuild -----------------------------------------------------------------


def _compact_one(session: Session, summary: Summary) -> int:
    table = summary.table
    key = ", ".join(summary.key)
    measures = ", ".join(summary.measures)
    sums = ", ".join(f"SUM({m})" for m in summary.measures)
    nonzero = " OR ".join(f"SUM({m}) <> 0" for m in summary.measures)
    if _dialect(session) == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(summary.lock)))
        # One statement, one snapshot: rows another transaction has not committed yet are
        # neither deleted nor counted, and wait for the next run.
        match = " AND ".join(f"t.{k} = keys.{k}" for k in summary.key)
        result = session.execute(
            text(
                f"WITH keys AS (SELECT DISTINCT {key} FROM {table.name} WHERE NOT compacted), "
                f"gone AS (DELETE FROM {table.name} t USING keys WHERE {match} "
                f"RETURNING t.*), "
                f"kept AS (INSERT INTO {table.name} ({key}, {measures}, compacted) "
                f"SELECT {key}, {sums}, true FROM gone GROUP BY {key} HAVING {nonzero} "
                "RETURNING 1) "
                "SELECT (SELECT count(*) FROM gone)"
            )
        )
        return int(result.scalar() or 0)
    # SQLite: one writer at a time, so the steps of this transaction see a still table.
    top = session.execute(select(func.max(table.c.id))).scalar() or 0
    keys = f"SELECT DISTINCT {key} FROM {table.name} WHERE compacted = 0 AND id <= :top"
    mine = f"id <= :top AND ({key}) IN ({keys})"
    folded = session.execute(
        text(f"SELECT count(*) FROM {table.name} WHERE {mine}"), {"top": top}
    ).scalar()
    session.execute(
        text(
            f"INSERT INTO {table.name} ({key}, {measures}, compacted) "
            f"SELECT {key}, {sums}, 1 FROM {table.name} WHERE {mine} GROUP BY {key} "
            f"HAVING {nonzero}"
        ),
        {"top": top},
    )
    session.execute(text(f"DELETE FROM {table.name} WHERE {mine}"), {"top": top})
    return int(folded or 0)


def compact(session: Session, summaries: Iterable[Summary] | None = None) -> int:
    """Fold the appended rows of every key that has any into one row (dropping keys that sum
    to nothing); returns the rows folded. Does not commit."""
    return sum(_compact_one(session, s) for s in summaries or SUMMARIES)


def _rebuild_one(session: Session, summary: Summary) -> int:
    table = summary.table
    session.execute(delete(table))
    dialect = _dialect(session)
    columns = [*summary.key, *summary.measures, "compacted"]
    days = summary.rows(dialect).subquery()
    session.execute(
        insert(table).from_select(
            columns, select(type_coerce("d", String), *days.c, type_coerce(True, Boolean))
        )
    )
    c = table.c
    month = (
        cast(func.date_trunc("month", c.day), Date)
        if dialect == "postgresql"
        else type_coerce(func.date(c.day, "start of month"), Date)
    )
    dims = [c[d] for d in summary.dims]
    session.execute(
        insert(table).from_select(
            columns,
            select(
                type_coerce("m", String),
                month,
                *dims,
                *[func.sum(c[m]) for m in summary.measures],
                type_coerce(True, Boolean),
            )
            .where(c.grain == "d")
            .group_by(month, *dims),
        )
    )
    return session.execute(select(func.count()).select_from(table)).scalar() or 0


def rebuild(session: Session, summaries: Iterable[Summary] | None = None) -> int:
    """Count every summary anew from the rows it counts (day and month rows); returns the rows
    written. Does not commit."""
    return sum(_rebuild_one(session, s) for s in summaries or SUMMARIES)


def compact_summaries() -> dict[str, int]:
    """The periodic job: fold the summaries' appended rows; commits."""
    from app.extensions import db

    folded = {f"{s.table.name}_rows_folded": _compact_one(db.session, s) for s in SUMMARIES}
    db.session.commit()
    return folded


# ---- the sales summary: leads ------------------------------------------------------------------

LEAD_MEASURES = tuple(f"n_{status}" for status in LEAD_STATUSES)


@scoped
class LeadSummary(Model):
    """Leads created on a UTC day (``grain='d'``) or in a month (``'m'``, ``day`` its first
    day) in a branch, by agent (0: none) and source, counted per status they are in now."""

    __tablename__ = "summary_lead"
    __table_args__ = summary_indexes("summary_lead", "branch_id", "agent_id")

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    grain: Mapped[str] = mapped_column(String(1))
    day: Mapped[date] = mapped_column(Date)
    branch_id: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))
    n_new: Mapped[int] = mapped_column(Integer, default=0)
    n_contacted: Mapped[int] = mapped_column(Integer, default=0)
    n_qualified: Mapped[int] = mapped_column(Integer, default=0)
    n_converted: Mapped[int] = mapped_column(Integer, default=0)
    n_lost: Mapped[int] = mapped_column(Integer, default=0)
    compacted: Mapped[bool] = mapped_column(Boolean, default=False)

    __scope__ = {
        "branch": lambda actor: LeadSummary.branch_id == actor.branch_id,
        "own": lambda actor: LeadSummary.agent_id == actor.user_id,
    }


def _lead_rows(dialect: str):
    t = Lead.__table__.c
    day = utc_day(t.created_at, dialect)
    agent = func.coalesce(t.assigned_agent_id, 0)
    counts = [func.sum(case((t.status == status, 1), else_=0)) for status in LEAD_STATUSES]
    return select(day, t.branch_id, agent, t.source, *counts).group_by(
        day, t.branch_id, agent, t.source
    )


def _leads_from_values(rows: list[dict]) -> Contribution:
    """What leads about to be inserted from ``rows`` (insert parameters) add."""
    now = datetime.now(UTC)
    found: dict[tuple, list[int]] = {}
    for row in rows:
        key = (*lead_key(row, now), row.get("source") or "manual")
        counts = found.setdefault(key, [0] * len(LEAD_STATUSES))
        counts[LEAD_STATUSES.index(row.get("status") or "new")] += 1
    return {key: tuple(counts) for key, counts in found.items()}


LEADS = register(
    Summary(
        model=LeadSummary,
        dims=("branch_id", "agent_id", "source"),
        measures=LEAD_MEASURES,
        watched={Lead: ("status", "source", "branch_id", "assigned_agent_id", "created_at")},
        rows=_lead_rows,
        affected=lambda cls, ids: among(Lead.__table__.c.id, ids),
        lock=7_301_002,
        from_values=_leads_from_values,
    )
)


def status_counts_by_source_and_agent(
    date_from: date | None, date_to: date | None, branch: int | None, agent: int | None
):
    """(status, source, agent id or None, leads) of the period, as the sales charts sum them:
    one grouped statement over the summary, through the session (so the reader's row scope
    applies)."""
    from app.extensions import db

    s = LeadSummary
    where = [period_clause(s, date_from, date_to), *people_clauses(s, branch, agent, "agent_id")]
    sums = [func.sum(getattr(s, m)) for m in LEAD_MEASURES]
    found = db.session.execute(
        select(s.source, s.agent_id, *sums).where(*where).group_by(s.source, s.agent_id)
    ).all()
    rows = []
    for source, agent_id, *numbers in found:
        for status, n in zip(LEAD_STATUSES, numbers, strict=True):
            if n:
                rows.append((status, source, agent_id or None, int(n)))
    return rows

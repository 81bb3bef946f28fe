"""The sales summary: leads counted per day and per month, by branch, agent, source and status.

The sales dashboard reads these rows instead of the million leads. A row is a *change*: every
write of leads appends, in the same transaction, rows that add the new leads and take away the
old state of changed or deleted ones (a status move is -1 on the old status, +1 on the new), at
two grains, the UTC day the lead was created (``grain = 'd'``) and its month (``'m'``). A sum
over the rows is therefore exact at every moment, with no lock and no hot counter row: writers
only insert. The ``compact-summaries`` job (every minute) folds the appended rows of each key
into one, which keeps reads short; ``flask crm rebuild-summaries`` builds the table anew from
the leads.

Why appended changes rather than counters updated in place: two agents adding leads in the same
branch on the same day would queue on one counter row until each other's transaction ends (an
import holds its rows for a minute), and a job that recounts every minute would leave the
dashboard a minute behind. Appending is exact at once and contends on nothing.

ORM flushes are seen by session events; a bulk ``insert(Lead)`` through the session is seen
from its parameters. A bulk UPDATE or DELETE of the columns counted here is refused, since its
old values are unknown: such a job must go through the ORM or rebuild.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from flask_appbuilder import Model
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Index,
    Integer,
    String,
    and_,
    case,
    cast,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from app.leads.models import LEAD_STATUSES, Lead
from app.security.scoping import scoped

TRACKED = ("status", "source", "branch_id", "assigned_agent_id", "created_at")
"""The lead columns the summary counts by: a change of any other column changes no count."""
MEASURES = tuple(f"n_{status}" for status in LEAD_STATUSES)
KEY = ("grain", "day", "branch_id", "agent_id", "source")
COMPACT_LOCK = 7_301_002
"""Advisory lock of the compaction (one at a time over the whole table)."""


@scoped
class LeadSummary(Model):
    """Leads created on a UTC day (``grain='d'``) or in a month (``'m'``, ``day`` its first
    day) in a branch, by agent (0: none) and source, counted per status they are in now."""

    __tablename__ = "summary_lead"
    __table_args__ = (
        Index("ix_summary_lead_grain_day", "grain", "day"),
        Index("ix_summary_lead_branch_grain_day", "branch_id", "grain", "day"),
        Index("ix_summary_lead_agent_grain_day", "agent_id", "grain", "day"),
        Index(
            "ix_summary_lead_pending",
            "compacted",
            postgresql_where=text("NOT compacted"),
            sqlite_where=text("compacted = 0"),
        ),
    )

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


# ---- what a set of leads contributes ------------------------------------------------------------

Contribution = Counter
"""(day, branch_id, agent_id, source, status) -> number of leads."""


def _utc_day(column, dialect: str):
    if dialect == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return type_coerce(func.date(column), Date)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def contribution_of(session: Session, where) -> Contribution:
    """What the leads matching ``where`` add to the summary now, read from the database
    (unscoped: the summary counts every lead, the reader's scope applies when reading it)."""
    day = _utc_day(Lead.__table__.c.created_at, _dialect(session))
    t = Lead.__table__.c
    agent = func.coalesce(t.assigned_agent_id, 0)
    rows = session.connection().execute(
        select(day, t.branch_id, agent, t.source, t.status, func.count())
        .where(where)
        .group_by(day, t.branch_id, agent, t.source, t.status)
    )
    return Counter({(d, b, a, s, st): n for d, b, a, s, st, n in rows})


def contribution_of_values(rows: Iterable[dict]) -> Contribution:
    """What leads about to be inserted from ``rows`` (insert parameters) add."""
    now = datetime.now(UTC)
    found: Contribution = Counter()
    for row in rows:
        created = row.get("created_at") or now
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        key = (
            created.astimezone(UTC).date(),
            row["branch_id"],
            row.get("assigned_agent_id") or 0,
            row.get("source") or "manual",
            row.get("status") or "new",
        )
        found[key] += 1
    return found


def record_change(session: Session, before: Contribution, after: Contribution) -> int:
    """Append the difference ``after - before`` at both grains; returns the rows written."""
    delta: Counter = Counter(after)
    delta.subtract(before)
    per_key: dict[tuple, dict[str, int]] = {}
    for (day, branch, agent, source, status), n in delta.items():
        if not n:
            continue
        for grain, at in (("d", day), ("m", day.replace(day=1))):
            measures = per_key.setdefault((grain, at, branch, agent, source), {})
            measures[f"n_{status}"] = measures.get(f"n_{status}", 0) + n
    rows = [
        {
            **dict(zip(KEY, key, strict=True)),
            **{m: measures.get(m, 0) for m in MEASURES},
            "compacted": False,
        }
        for key, measures in sorted(per_key.items())
        if any(measures.values())
    ]
    if rows:
        session.connection().execute(insert(LeadSummary.__table__), rows)
    return len(rows)


# ---- session events ---------------------------------------------------------------------------


def _changed_leads(session: Session) -> list[Lead]:
    from sqlalchemy import inspect

    changed = []
    for obj in session.dirty:
        if isinstance(obj, Lead) and obj.id is not None:
            state = inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in TRACKED):
                changed.append(obj)
    return changed


def _before_flush(session: Session, flush_context, instances) -> None:
    old_ids = {lead.id for lead in _changed_leads(session)}
    old_ids |= {obj.id for obj in session.deleted if isinstance(obj, Lead) and obj.id}
    new = [obj for obj in session.new if isinstance(obj, Lead)]
    if not old_ids and not new:
        return
    before = contribution_of(session, Lead.__table__.c.id.in_(old_ids)) if old_ids else Counter()
    session.info.setdefault("crm.lead_summary", []).append((old_ids, new, before))


def _after_flush(session: Session, flush_context) -> None:
    pending = session.info.pop("crm.lead_summary", None)
    for old_ids, new, before in pending or ():
        ids = (set(old_ids) | {obj.id for obj in new if obj.id is not None}) - {
            obj.id for obj in session.deleted if isinstance(obj, Lead)
        }
        after = contribution_of(session, Lead.__table__.c.id.in_(ids)) if ids else Counter()
        record_change(session, before, after)


def _on_bulk_statement(state: ORMExecuteState) -> None:
    mapper = state.bind_mapper
    if mapper is None or mapper.class_ is not Lead:
        return
    if state.is_insert:
        params = state.parameters
        rows = params if isinstance(params, list) else [params] if params else []
        if rows and "branch_id" in rows[0]:
            record_change(state.session, Counter(), contribution_of_values(rows))
        return
    if state.is_update or state.is_delete:
        values = getattr(state.statement, "_values", None) or {}
        names = {getattr(k, "key", str(k)) for k in values}
        if state.is_delete or names & set(TRACKED):
            raise RuntimeError(
                "a bulk UPDATE/DELETE of the lead columns the sales summary counts "
                f"({', '.join(sorted(names & set(TRACKED)) or ['rows'])}) would leave it "
                "wrong; change those leads through the ORM, or rebuild the summary"
            )


_installed = False


def install_summary_hooks() -> None:
    global _installed
    if _installed:
        return
    event.listen(Session, "before_flush", _before_flush)
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "do_orm_execute", _on_bulk_statement)
    _installed = True


# ---- reading ----------------------------------------------------------------------------------


def period_clause(date_from: date | None, date_to: date | None):
    """The summary rows of the period (UTC days, both ends included): whole months from the
    month rows, the days at either end that do not fill a month from the day rows."""
    s = LeadSummary
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


def status_counts_by_source_and_agent(
    date_from: date | None, date_to: date | None, branch: int | None, agent: int | None
):
    """(status, source, agent id or None, leads) of the period, as the sales charts sum them:
    one grouped statement over the summary, through the session (so the reader's row scope
    applies)."""
    from app.extensions import db

    s = LeadSummary
    where = [period_clause(date_from, date_to)]
    if branch is not None:
        where.append(s.branch_id == branch)
    if agent is not None:
        where.append(s.agent_id == agent)
    sums = [func.sum(getattr(s, m)) for m in MEASURES]
    found = db.session.execute(
        select(s.source, s.agent_id, *sums).where(*where).group_by(s.source, s.agent_id)
    ).all()
    rows = []
    for source, agent_id, *numbers in found:
        for status, n in zip(LEAD_STATUSES, numbers, strict=True):
            if n:
                rows.append((status, source, agent_id or None, int(n)))
    return rows


# ---- compaction and rebuild -----------------------------------------------------------------


def compact(session: Session) -> int:
    """Fold the appended rows of every key that has any into one row (dropping keys that sum
    to nothing); returns the rows folded. Does not commit."""
    table = LeadSummary.__table__
    key = ", ".join(KEY)
    sums = ", ".join(f"SUM({m})" for m in MEASURES)
    nonzero = " OR ".join(f"SUM({m}) <> 0" for m in MEASURES)
    if _dialect(session) == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(COMPACT_LOCK)))
        # One statement, one snapshot: rows another transaction has not committed yet are
        # neither deleted nor counted, and wait for the next run.
        match = " AND ".join(f"t.{k} = keys.{k}" for k in KEY)
        result = session.execute(
            text(
                f"WITH keys AS (SELECT DISTINCT {key} FROM {table.name} WHERE NOT compacted), "
                f"gone AS (DELETE FROM {table.name} t USING keys WHERE {match} "
                f"RETURNING t.*), "
                f"kept AS (INSERT INTO {table.name} ({key}, {', '.join(MEASURES)}, compacted) "
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
            f"INSERT INTO {table.name} ({key}, {', '.join(MEASURES)}, compacted) "
            f"SELECT {key}, {sums}, 1 FROM {table.name} WHERE {mine} GROUP BY {key} "
            f"HAVING {nonzero}"
        ),
        {"top": top},
    )
    session.execute(text(f"DELETE FROM {table.name} WHERE {mine}"), {"top": top})
    return int(folded or 0)


def rebuild(session: Session) -> int:
    """Count every lead anew into the summary (day and month rows); returns the rows written.
    Does not commit."""
    table = LeadSummary.__table__
    session.execute(delete(table))
    t = Lead.__table__.c
    dialect = _dialect(session)
    day = _utc_day(t.created_at, dialect)
    counts = [func.sum(case((t.status == status, 1), else_=0)) for status in LEAD_STATUSES]
    agent = func.coalesce(t.assigned_agent_id, 0)
    session.execute(
        insert(table).from_select(
            [*KEY, *MEASURES, "compacted"],
            select(
                type_coerce("d", String), day, t.branch_id, agent, t.source, *counts, True
            ).group_by(day, t.branch_id, agent, t.source),
        )
    )
    c = table.c
    month = (
        cast(func.date_trunc("month", c.day), Date)
        if dialect == "postgresql"
        else type_coerce(func.date(c.day, "start of month"), Date)
    )
    session.execute(
        insert(table).from_select(
            [*KEY, *MEASURES, "compacted"],
            select(
                type_coerce("m", String),
                month,
                c.branch_id,
                c.agent_id,
                c.source,
                *[func.sum(c[m]) for m in MEASURES],
                True,
            )
            .where(c.grain == "d")
            .group_by(month, c.branch_id, c.agent_id, c.source),
        )
    )
    return session.execute(select(func.count()).select_from(table)).scalar() or 0


def compact_summaries() -> dict[str, int]:
    """The periodic job: fold the summary's appended rows; commits."""
    from app.extensions import db

    folded = compact(db.session)
    db.session.commit()
    return {"lead_rows_folded": folded}

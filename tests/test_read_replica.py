"""CRM_READ_REPLICA_URL: dashboard figures, report builds and export rows read the replica;
lists, detail pages and every write stay on the primary.

The replica here is a real second PostgreSQL database made from the primary with
``CREATE DATABASE ... TEMPLATE``: a copy frozen at that moment, i.e. a replica that has not yet
replayed what the primary wrote afterwards. What a screen shows then tells which database it read.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg2
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.core.config_check import check_settings
from app.core.replica import has_replica
from app.extensions import db
from app.leads.models import Lead
from tests.support import (
    PG_ADMIN_URL,
    build_app,
    postgres_reachable_or_fail,
    prepare_schema,
    temporary_postgres_database,
)
from tests.test_dashboards import (
    add_leads,
    at,
    build_world,
    counts,
    open_dashboard,
    record_count,
    sign_in,
)
from tests.test_exports import csv_rows


def _admin(sql: str, *args: object) -> None:
    connection = psycopg2.connect(PG_ADMIN_URL)
    connection.autocommit = True
    try:
        with connection.cursor() as cur:
            cur.execute(sql, args)
    finally:
        connection.close()


@pytest.fixture(scope="module")
def databases():
    """(primary URL, replica URL, world): the replica copied from the primary after seeding."""
    postgres_reachable_or_fail()
    with temporary_postgres_database() as primary:
        seed = build_app(primary)
        prepare_schema(seed)
        with seed.app_context():
            world = build_world()
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
        name = primary.rsplit("/", 1)[1]
        replica_name = f"{name}_replica"
        _admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", name)
        _admin(f'CREATE DATABASE "{replica_name}" TEMPLATE "{name}"')
        try:
            yield primary, primary.rsplit("/", 1)[0] + f"/{replica_name}", world
        finally:
            _admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                replica_name,
            )
            _admin(f'DROP DATABASE IF EXISTS "{replica_name}"')


@pytest.fixture(scope="module")
def later_leads(databases):
    """Three more new leads written to the primary after the replica was copied."""
    primary, _replica, world = databases
    app = build_app(primary)
    with app.app_context():
        first, _last = world.period
        add_leads(world.users["agent"], ["new", "new", "new"], at(first + timedelta(days=1)))
        db.session.commit()
        total = db.session.scalar(select(func.count()).select_from(Lead))
    return total


def _filters(world) -> dict[str, object]:
    first, last = world.period
    return {
        "date_from": first.isoformat(),
        "date_to": last.isoformat(),
        "branch": world.mum,
        "agent": world.uid("agent"),
    }


def _funnel(client, world) -> dict[str, int]:
    return counts(open_dashboard(client, "sales", **_filters(world))["lead-funnel"])


def test_dashboards_read_the_replica_and_lists_the_primary(databases, later_leads):
    primary, replica, world = databases
    routed = build_app(primary, CRM_READ_REPLICA_URL=replica)
    plain = build_app(primary)
    with routed.app_context():
        assert has_replica()
        client = routed.test_client()
        sign_in(client, world, "admin")
        # The replica has not seen the three new leads: the dashboard still counts 4 new ...
        assert _funnel(client, world)["New"] == 4
        # ... while the funnel's own drill-down list (a list page: the primary) holds 7.
        charts = open_dashboard(client, "sales", **_filters(world))
        assert record_count(client, charts["lead-funnel"]["New"][2]) == 7
        exported = csv_rows(client.get("/leadview/export/csv"))[1:]
    with plain.app_context():
        assert not has_replica()
        client = plain.test_client()
        sign_in(client, world, "admin")
        # Without the setting the same dashboard reads the primary and counts the new leads.
        assert _funnel(client, world)["New"] == 7
        primary_rows = csv_rows(client.get("/leadview/export/csv"))[1:]
    # The export's rows came from the replica: three fewer than the primary holds.
    assert len(primary_rows) == later_leads
    assert len(exported) == later_leads - 3


def test_an_export_read_on_the_replica_is_audited_on_the_primary(databases, later_leads):
    primary, replica, world = databases
    routed = build_app(primary, CRM_READ_REPLICA_URL=replica)
    with routed.app_context():
        before = db.session.scalar(select(func.count()).select_from(AuditLog))
        client = routed.test_client()
        sign_in(client, world, "admin")
        response = client.get("/leadview/export/csv")
        assert response.status_code == 200
        db.session.remove()
        entries = db.session.scalars(select(AuditLog).order_by(AuditLog.seq.desc()).limit(5)).all()
        assert db.session.scalar(select(func.count()).select_from(AuditLog)) > before
        assert any(
            f"{later_leads - 3} rows" in (e.detail or "") and e.action == "export" for e in entries
        )
    # Nothing was written to the replica.
    replica_app = build_app(replica)
    with replica_app.app_context():
        assert not db.session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "export")
        )


def test_writes_inside_a_replica_read_go_to_the_primary(databases, later_leads):
    """A lead saved while a dashboard read is routed still lands on the primary, and a locking
    read (SELECT ... FOR UPDATE) is never sent to the replica."""
    from app.core.replica import replica_reads

    primary, replica, world = databases
    routed = build_app(primary, CRM_READ_REPLICA_URL=replica)
    with routed.app_context():
        newest = db.session.scalar(select(func.max(Lead.id)))  # outside the block: the primary
        with replica_reads():
            lead = db.session.scalars(select(Lead).order_by(Lead.id.desc()).limit(1)).first()
            locked = db.session.scalars(
                select(Lead).where(Lead.id == newest).with_for_update()
            ).first()
            # The plain read saw the replica's newest lead; the locking read found the primary's.
            assert locked is not None and locked.id > lead.id
            locked_id = locked.id
            locked.notes = "checked while a dashboard was open"
            db.session.commit()
    with build_app(primary).app_context():
        assert db.session.get(Lead, locked_id).notes == "checked while a dashboard was open"
    with build_app(replica).app_context():
        assert db.session.get(Lead, locked_id) is None  # the replica never had that lead


def test_check_config_refuses_a_replica_on_another_database_engine():
    base = {"DATABASE_URL": "postgresql://crm:pw@db:5432/fincrm"}
    problems = check_settings({**base, "CRM_READ_REPLICA_URL": "sqlite:///replica.db"})
    assert any(
        p.setting == "CRM_READ_REPLICA_URL" and p.fails and "same database engine" in p.message
        for p in problems
    )
    same = check_settings(
        {**base, "CRM_READ_REPLICA_URL": "postgresql://crm:pw@replica:5432/fincrm"}
    )
    assert not [p for p in same if p.setting == "CRM_READ_REPLICA_URL"]

"""`flask crm init` and the migrations on a real PostgreSQL server."""

from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy import create_engine, inspect, text

from tests.support import build_app, postgres_reachable_or_fail, temporary_postgres_database


def _grants(url: str) -> set[tuple[str, str, str]]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            """SELECT r.name, p.name, v.name FROM ab_permission_view_role pvr
               JOIN ab_role r ON r.id = pvr.role_id
               JOIN ab_permission_view pv ON pv.id = pvr.permission_view_id
               JOIN ab_permission p ON p.id = pv.permission_id
               JOIN ab_view_menu v ON v.id = pv.view_menu_id"""
        )
        return set(cur.fetchall())


@pytest.fixture
def empty_database():
    postgres_reachable_or_fail()
    with temporary_postgres_database() as url:
        yield url


def test_init_twice_is_a_no_op_the_second_time(empty_database):
    app = build_app(empty_database)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["crm", "init"])
    assert first.exit_code == 0, first.output
    # the seven of DOMAIN section 1, Support (the customer service desk), and Public
    assert "9 roles created" in first.output
    grants_after_first = _grants(empty_database)
    assert ("Agent", "can_read", "Lead") in grants_after_first
    assert ("Agent", "can_delete", "Lead") not in grants_after_first
    assert ("Broker", "can_read", "Lead") not in grants_after_first

    second = runner.invoke(args=["crm", "init"])
    assert second.exit_code == 0, second.output
    assert "0 roles created, 0 grants added, 0 grants removed" in second.output
    assert _grants(empty_database) == grants_after_first


def test_init_restores_a_grant_removed_by_hand(empty_database):
    app = build_app(empty_database)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["crm", "init"]).exit_code == 0
    with psycopg2.connect(empty_database) as conn, conn.cursor() as cur:
        cur.execute(
            """DELETE FROM ab_permission_view_role WHERE role_id = (SELECT id FROM ab_role WHERE name='Agent')
               AND permission_view_id IN (SELECT pv.id FROM ab_permission_view pv
               JOIN ab_view_menu v ON v.id = pv.view_menu_id WHERE v.name = 'Lead')"""
        )
    result = runner.invoke(args=["crm", "init", "--no-migrate"])
    assert "2 grants added" in result.output
    assert ("Agent", "can_write", "Lead") in _grants(empty_database)


def test_migrations_upgrade_an_empty_database_and_downgrade_to_base(empty_database):
    from flask_migrate import downgrade, upgrade

    app = build_app(empty_database)
    engine = create_engine(empty_database.replace("postgresql://", "postgresql+psycopg2://"))
    with app.app_context():
        upgrade()
        tables = set(inspect(engine).get_table_names())
        assert {"lead", "interaction", "branch", "staff_profile", "ab_user", "ab_role"} <= tables
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        downgrade(revision="base")
    engine.dispose()
    engine = create_engine(empty_database.replace("postgresql://", "postgresql+psycopg2://"))
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_models_and_migrations_agree(pg_app):
    """`flask db check`: the models and the migration history describe the same schema."""
    result = pg_app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


def test_seed_demo_prints_logins_and_runs_once(empty_database):
    app = build_app(empty_database)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["crm", "init"]).exit_code == 0
    first = runner.invoke(args=["crm", "seed-demo", "--leads", "12"])
    assert first.exit_code == 0, first.output
    assert "agent" in first.output and "FinCRM-demo-2026" in first.output
    assert "12 leads" in first.output
    second = runner.invoke(args=["crm", "seed-demo"])
    assert "already present" in second.output
    with psycopg2.connect(empty_database) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT phone) FROM lead WHERE phone LIKE '+%'")
        assert cur.fetchone() == (12, 12)

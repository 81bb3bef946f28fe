"""`flask crm ...`: the commands that set FinCRM up and look after it."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.extensions import appbuilder, db


@click.group("crm")
def crm_cli() -> None:
    """FinCRM administration."""


@crm_cli.command("init")
@click.option("--no-migrate", is_flag=True, help="Only sync roles and permissions.")
@with_appcontext
def init_command(no_migrate: bool) -> None:
    """Migrate the database, then create or update every role and its permissions."""
    from flask_migrate import upgrade

    from app.security.sync import sync_roles

    if not no_migrate:
        upgrade()
    report = sync_roles(appbuilder())
    db.session.commit()
    click.echo(
        f"roles and permissions in sync: {report.roles_created} roles created, "
        f"{report.grants_added} grants added, {report.grants_removed} grants removed"
    )


@crm_cli.command("seed-demo")
@click.option("--leads", default=60, show_default=True, help="How many demo leads.")
@with_appcontext
def seed_demo_command(leads: int) -> None:
    """Branches, one member of staff per role, leads and interactions to click around."""
    from app.core.demo import DEMO_PASSWORD, seed_demo

    created = seed_demo(lead_count=leads)
    if created is None:
        click.echo("demo data already present; nothing added.")
        return
    db.session.commit()
    click.echo(
        f"demo data added: {created['branches']} branches, {created['leads']} leads, "
        f"{created['clients']} clients."
    )
    click.echo(f"logins (password for all: {DEMO_PASSWORD}):")
    for username, role in created["logins"]:
        click.echo(f"  {username:<12} {role}")


@crm_cli.command("audit-verify")
@with_appcontext
def audit_verify_command() -> None:
    """Walk the audit log's hash chain; exit 1 naming the first row altered, removed or misplaced."""
    from app.core.audit import verify_chain

    with db.engine.connect() as connection:
        report = verify_chain(connection)
    if report.ok:
        click.echo(f"audit log intact: {report.rows} rows verified")
        return
    click.echo(
        f"audit log BROKEN at row id {report.first_bad_id} (seq {report.first_bad_seq}): {report.reason}",
        err=True,
    )
    raise SystemExit(1)


@crm_cli.command("rotate-keys")
@click.option("--batch", default=1000, show_default=True, help="Rows re-encrypted per transaction.")
@with_appcontext
def rotate_keys_command(batch: int) -> None:
    """Re-encrypt every encrypted value under the newest key of CRM_ENCRYPTION_KEYS."""
    from app.core.crypto import rotate_all_encrypted_columns

    for table, column, count in rotate_all_encrypted_columns(db, batch):
        click.echo(f"{table}.{column}: {count} values re-encrypted")
    click.echo("every encrypted value now uses the newest key")

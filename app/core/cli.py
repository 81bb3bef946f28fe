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
    from app.ledger.services import seed_chart

    report = sync_roles(appbuilder())
    accounts = seed_chart()
    db.session.commit()
    click.echo(
        f"roles and permissions in sync: {report.roles_created} roles created, "
        f"{report.grants_added} grants added, {report.grants_removed} grants removed; "
        f"{accounts} ledger accounts created"
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
        f"{created['clients']} clients, {created['loans']} loan applications, "
        f"{created['exchanges']} forex exchange."
    )
    click.echo(f"offers: {created['offers']} (run daily; see Sales > Offers).")
    click.echo(
        f"scheduled reports: {created['report_schedules']} (repayment compliance to managers, "
        "Mondays; see Reports > Scheduled reports)."
    )
    click.echo(f"billing: {created['invoices']} invoices, one quotation, one contract.")
    click.echo(f"brokerage: 3 instruments, {created['trades']} trades (one flagged).")
    click.echo(f"logins (password for all: {DEMO_PASSWORD}):")
    for username, role in created["logins"]:
        click.echo(f"  {username:<12} {role}")


@crm_cli.command("role-table")
def role_table_command() -> None:
    """Print the README's role table, made from app/security/roles.py."""
    from app.security.roles import role_table

    click.echo(role_table())


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


@crm_cli.command("rebuild-summaries")
@with_appcontext
def rebuild_summaries_command() -> None:
    """Count the dashboards' summaries anew (leads, loan applications, instalments; day and
    month rows) from the rows they count."""
    from app.dashboards.summary import SUMMARIES, rebuild

    for summary in SUMMARIES:
        rows = rebuild(db.session, [summary])
        db.session.commit()
        click.echo(f"{summary.table.name} rebuilt: {rows} rows")


@crm_cli.command("rotate-keys")
@click.option("--batch", default=1000, show_default=True, help="Rows re-encrypted per transaction.")
@with_appcontext
def rotate_keys_command(batch: int) -> None:
    """Re-encrypt every encrypted value under the newest key of CRM_ENCRYPTION_KEYS."""
    from app.core.crypto import rotate_all_encrypted_columns

    for table, column, count in rotate_all_encrypted_columns(db, batch):
        click.echo(f"{table}.{column}: {count} values re-encrypted")
    click.echo("every encrypted value now uses the newest key")


@crm_cli.command("import-leads")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--as", "username", required=True, help="The member of staff importing (owns the leads)."
)
@click.option("--valid-only", is_flag=True, help="Import the valid rows even if some are bad.")
@with_appcontext
def import_leads_command(path: str, username: str, valid_only: bool) -> None:
    """Import leads from a CSV or XLSX file: all rows checked first, then all valid rows or none.

    The same steps as the Import leads screen and API (an import record, the check, the import
    in one transaction), run here in the foreground with progress bars."""
    from pathlib import Path

    from flask_appbuilder.security.sqla.models import User
    from sqlalchemy import select

    from app.core.errors import DomainError
    from app.leads import imports
    from app.security.scoping import UNSCOPED, actor_for_user

    user = db.session.scalar(
        select(User).where(User.username == username), execution_options=UNSCOPED
    )
    if user is None:
        raise click.UsageError(f"no member of staff called {username!r}")
    actor = actor_for_user(user.id)
    try:
        lead_import = imports.upload_import(Path(path).name, Path(path).read_bytes(), actor)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(f"{path}: {exc}") from exc
    import_id = lead_import.id
    stderr = click.get_text_stream("stderr")
    with click.progressbar(
        length=lead_import.total_rows, label="checking rows", file=stderr
    ) as bar:
        imports.check_import_job(import_id, progress=bar.update)
    lead_import = db.session.get(imports.LeadImport, import_id)
    if lead_import.status != "checked":
        raise click.ClickException(lead_import.message or f"the import is {lead_import.status}")
    for problem in imports.import_problems(lead_import):
        click.echo(f"row {problem['row']}: {problem['field']}: {problem['reason']}")
    click.echo(
        f"{lead_import.total_rows} rows: {lead_import.valid_rows} valid, "
        f"{lead_import.invalid_rows} invalid, {lead_import.duplicate_rows} duplicates"
    )
    if lead_import.valid_rows < lead_import.total_rows and not valid_only:
        imports.discard_import(import_id)
        db.session.commit()
        click.echo("nothing imported (use --valid-only to import the valid rows)")
        raise SystemExit(1)
    imports.request_import(import_id)
    db.session.commit()
    with click.progressbar(
        length=lead_import.total_rows, label="importing rows", file=stderr
    ) as bar:
        status = imports.import_rows_job(import_id, progress=bar.update)
    lead_import = db.session.get(imports.LeadImport, import_id)
    if status != "imported":
        raise click.ClickException(lead_import.message or f"the import is {lead_import.status}")
    click.echo(f"imported {lead_import.imported_rows} leads (import #{import_id})")


@crm_cli.command("load-prices")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def load_prices_command(path: str) -> None:
    """Load instrument prices from a CSV file (header: symbol,price,as_of); all rows or none."""
    from app.brokerage.prices import load_prices_cli

    load_prices_cli(path)


@crm_cli.command("load-rates")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def load_rates_command(path: str) -> None:
    """Load FX rates from a CSV file (base,quote,rate,as_of): every row checked, all or none."""
    from app.core.errors import DomainError
    from app.forex.rates import CsvRateFeed, load_rates

    try:
        added = load_rates(CsvRateFeed(path))
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(f"{path}: {exc}") from exc
    click.echo(f"{len(added)} rate(s) added from {path}")


def _add_api_key_commands() -> None:
    from app.security.api_keys import api_key_cli

    crm_cli.add_command(api_key_cli)


_add_api_key_commands()

from app.core.config_cli import add_config_commands  # noqa: E402

add_config_commands(crm_cli)


def _add_backup_commands() -> None:
    from app.core.backup_cli import backup_command, restore_command

    crm_cli.add_command(backup_command)
    crm_cli.add_command(restore_command)


_add_backup_commands()


@crm_cli.command("support-ingest")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@with_appcontext
def support_ingest_command(path: str) -> None:
    """File one raw e-mail (RFC 822; ``-`` reads standard input) into its support case."""
    from app.core.audit import record_rejection
    from app.core.errors import DomainError
    from app.support.inbound import ingest_email

    with click.open_file(path, "rb") as handle:
        raw = handle.read()
    try:
        done = ingest_email(raw)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        record_rejection("support_case", f"support-ingest {path}: {exc}")
        raise click.ClickException(f"{path}: not filed: {exc}") from exc
    verb = "opened" if done.created else f"joined (by {done.how})"
    click.echo(
        f"case #{done.case.id} {verb}: message #{done.message.id} from {done.message.sender}"
    )

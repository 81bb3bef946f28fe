"""``flask crm backup`` and ``flask crm restore`` (see app.core.backup and docs/backup.md)."""

from __future__ import annotations

import datetime as dt

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("backup")
@click.option(
    "--output",
    "output",
    default=None,
    help="Archive path or s3://bucket/key (default: a new file in CRM_BACKUP_DIR).",
)
@with_appcontext
def backup_command(output: str | None) -> None:
    """Write an encrypted archive of the database, every stored file and a manifest."""
    from app.core.backup import BackupError, _destination_name, create_backup

    if not output:
        folder = (current_app.config.get("CRM_BACKUP_DIR") or "").strip()
        if not folder:
            raise click.ClickException("give --output PATH or set CRM_BACKUP_DIR")
        output = folder.rstrip("/") + "/" + _destination_name(dt.datetime.now(dt.UTC))
    try:
        result = create_backup(output)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    manifest = result.manifest
    click.echo(
        f"backup written to {result.path}: {sum(manifest['row_counts'].values())} rows in "
        f"{len(manifest['row_counts'])} tables, {len(manifest['documents'])} files"
    )


@click.command("restore")
@click.argument("path")
@with_appcontext
def restore_command(path: str) -> None:
    """Restore an archive into an EMPTY database and storage, then verify everything."""
    from app.core.backup import BackupError, restore_backup

    try:
        manifest = restore_backup(path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"restored {path}: {sum(manifest['row_counts'].values())} rows, "
        f"{len(manifest['documents'])} files; checksums, row counts and audit chain verified"
    )

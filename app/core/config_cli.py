"""`flask crm check-config` and `flask crm make-env`: production settings, checked and made.

Both run even where ``create_app`` would refuse the settings (see ``app.config_commands``),
so an operator can ask what is wrong, or make a fresh ``.env``, inside the production image.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from app.core.config_check import check_settings, make_env, settings_from_config

COMMAND_NAMES = ("check-config", "make-env")
"""Commands ``create_app`` lets run with settings it would otherwise refuse."""


@click.command("check-config")
@with_appcontext
def check_config_command() -> None:
    """Name every missing or unsafe production setting; exit 1 if there is one."""
    problems = check_settings(settings_from_config(current_app.config))
    for problem in problems:
        click.echo(str(problem), err=problem.fails)
    failing = [p for p in problems if p.fails]
    if failing:
        click.echo(
            f"{len(failing)} setting problem(s): FinCRM must not run in production like this.",
            err=True,
        )
        raise SystemExit(1)
    click.echo("production settings OK" + (" (see the warnings above)" if problems else ""))


@click.command("make-env")
@click.option(
    "--host",
    default="localhost",
    show_default=True,
    help="The host name users reach FinCRM by (CRM_SAFE_REDIRECT_HOSTS, CRM_BASE_URL).",
)
def make_env_command(host: str) -> None:
    """Print a fresh .env for docker-compose.yml: new random secrets and keys."""
    click.echo(make_env(host), nl=False)


def add_config_commands(group: click.Group) -> None:
    group.add_command(check_config_command)
    group.add_command(make_env_command)

"""FinCRM application factory.

Order matters: settings, database, security and views, API, CLI. Permissions are synced by
``flask crm init``, never at start-up, so web and worker processes do not race on them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask
from flask_appbuilder import AppBuilder

from app.extensions import csrf, db, migrate

log = logging.getLogger(__name__)


def create_app(config: object | None = None) -> Flask:
    import config as settings

    app = Flask(__name__, instance_path=str(settings.INSTANCE_DIR))
    app.config.from_object(config or settings.config_for_environment())
    from app.security.guards import BoundedIntegerConverter

    app.url_map.converters["int"] = BoundedIntegerConverter  # before any route is added
    _refuse_unsafe_production_settings(app)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from app.core.replica import replica_binds

    replica_binds(app.config)
    with app.app_context():
        db.init_app(app)
        migrate.init_app(
            app,
            db,
            directory=str(Path(__file__).resolve().parent.parent / "migrations"),
            render_as_batch=True,
        )

        from app.comms.live import install_live_hooks
        from app.comms.services import install_outbox_hooks
        from app.core.audit import install_audit_hooks
        from app.dashboards.summary import install_summary_hooks
        from app.security.events import install_security_event_hooks
        from app.security.manager import CrmSecurityManager
        from app.security.scoping import install_row_scoping

        install_row_scoping(db)
        install_audit_hooks()
        install_summary_hooks()
        install_outbox_hooks()
        install_live_hooks()
        install_security_event_hooks()
        from app.home.views import HomeView

        builder = AppBuilder(
            security_manager_class=CrmSecurityManager, update_perms=False, indexview=HomeView
        )
        builder.init_app(app, db.session)

        from app.views import register_views

        register_views(builder)
        builder.sm.limit_api_login()
        from app.security.sessions import install_server_sessions

        install_server_sessions(app, builder)
        from app.security.headers import install_security_headers

        install_security_headers(app)
        _protect_forms_from_csrf(app, builder)

        from app.core.errors import register_error_handlers

        register_error_handlers(app)
        _add_navbar_context(app)
        from app.core.navbar import install_navbar_menu

        install_navbar_menu(app)
        from app.core.list_page import row_buttons

        app.jinja_env.globals["crm_row_buttons"] = row_buttons
        from app.core.once import submission_token

        app.jinja_env.globals["submission_token"] = submission_token
        from app.core.localtime import install_local_time

        install_local_time(app)

    from app.core.cli import crm_cli

    app.cli.add_command(crm_cli)
    return app


def _add_navbar_context(app: Flask) -> None:
    """The unread count beside the bell in the navbar (one indexed count per page)."""
    from flask_login import current_user

    @app.context_processor
    def unread_notifications() -> dict:
        if not current_user or not current_user.is_authenticated:
            return {"crm_unread_notifications": 0}
        from app.comms.live import POLL_SECONDS
        from app.comms.services import unread_count

        return {
            "crm_unread_notifications": unread_count(current_user.id),
            # with Redis the page listens to a stream, without it polls (app.comms.live)
            "crm_live_stream": bool(app.config.get("REDIS_URL")),
            "crm_live_poll_seconds": POLL_SECONDS,
        }


def _protect_forms_from_csrf(app: Flask, builder: AppBuilder) -> None:
    from flask_appbuilder.api import BaseApi

    from app.security.guards import install_request_guards

    csrf.init_app(app)
    api_blueprints = {}
    for view in builder.baseviews:
        if isinstance(view, BaseApi):
            csrf.exempt(view.blueprint)
            model = getattr(getattr(view, "datamodel", None), "obj", None)
            api_blueprints[view.blueprint.name] = getattr(
                model, "__tablename__", view.resource_name or view.blueprint.name
            )
    install_request_guards(app, api_blueprints, csrf)


def _refuse_unsafe_production_settings(app: Flask) -> None:
    """Refuse to start in production with a missing, weak or published secret
    (app.core.config_check); log each other unsafe setting. ``flask crm check-config`` and
    ``flask crm make-env`` still run, to say what is wrong or make new secrets."""
    from app.core.config_check import UNSAFE, check_settings, refusal_message, settings_from_config

    if app.config.get("CRM_ENV") != "production":
        return
    problems = check_settings(settings_from_config(app.config))
    message = refusal_message(problems)
    if message and not _running_config_command():
        raise RuntimeError(message)
    for problem in problems:
        if problem.level == UNSAFE:
            log.warning("production setting %s %s", problem.setting, problem.message)


def _running_config_command() -> bool:
    """Whether this process is `flask ... crm check-config` or `flask ... crm make-env`."""
    import sys

    from app.core.config_cli import COMMAND_NAMES

    args = sys.argv[1:]
    return any(
        arg == "crm" and i + 1 < len(args) and args[i + 1] in COMMAND_NAMES
        for i, arg in enumerate(args)
    )

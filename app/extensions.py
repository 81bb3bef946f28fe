"""Extension singletons shared by the app factory, the worker and the tests.

The database and migration objects are process-wide; the AppBuilder is made per app (see
``create_app``) because it keeps the list of registered views, and tests build more than one app.
"""

from __future__ import annotations

from flask import current_app
from flask_appbuilder import AppBuilder, Model
from flask_appbuilder.models.sqla.base import SQLA
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

from app.core.replica import RoutingSession

# One metadata for FAB's ab_* tables and ours, so Alembic sees the whole schema.
# Its sessions send dashboard and export reads to a read replica when one is set (app/core/replica.py).
db = SQLA(model_class=Model, session_options={"class_": RoutingSession})
migrate = Migrate()
# Every form POST needs a CSRF token. JSON APIs are exempt: they take only application/json
# (which a cross-site form cannot send) and bearer tokens or API keys.
csrf = CSRFProtect()


def appbuilder() -> AppBuilder:
    """The AppBuilder of the current app."""
    return current_app.appbuilder

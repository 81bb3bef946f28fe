"""FinCRM's security manager: FAB's, with the API login throttled like the form login."""

from __future__ import annotations

from flask import current_app
from flask_appbuilder.security.sqla.manager import SecurityManager


class CrmSecurityManager(SecurityManager):
    def limit_api_login(self) -> None:
        """Throttle ``POST /api/v1/security/login`` (FAB limits only the form login)."""
        if not current_app.config.get("AUTH_RATE_LIMITED"):
            return
        api = next(
            (view for view in self.appbuilder.baseviews if view.__class__.__name__ == "SecurityApi"),
            None,
        )
        if api is not None:
            self.limiter.limit(self.auth_rate_limit, methods=["POST"])(api.blueprint)

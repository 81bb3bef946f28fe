"""The home page: FAB's index (the page after sign-in and behind the brand link)."""

from __future__ import annotations

from flask import redirect
from flask_appbuilder import IndexView, expose
from flask_login import current_user

from app.core.types import utcnow
from app.security.scoping import current_actor


class HomeView(IndexView):
    """Today's work of the signed-in member of staff: the sections their roles work (see
    ``app.home.audience``). A visitor who is not signed in is sent to the sign-in page."""

    class_permission_name = "Home"
    method_permission_name = {"index": "read"}
    base_permissions = ["can_read"]
    index_template = "crm/home.html"

    @expose("/")
    def index(self):
        if not current_user.is_authenticated:
            return redirect(self.appbuilder.get_url_for_login)
        self.update_redirect()
        if not self.appbuilder.sm.has_access("can_read", "Home"):
            # A user without any FinCRM role (FAB's own screens only): FAB's welcome page.
            return self.render_template("appbuilder/index.html", appbuilder=self.appbuilder)
        from app.home.services import build_home

        page = build_home(current_actor(), utcnow())
        return self.render_template(
            self.index_template, appbuilder=self.appbuilder, page=page, title="Home"
        )

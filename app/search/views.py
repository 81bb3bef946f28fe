"""``GET /search/?q=``: the navbar's search box (app.search.services)."""

from __future__ import annotations

from flask import current_app, request
from flask_appbuilder import BaseView, expose, has_access

from app.core.errors import DomainError
from app.search import services


class SearchView(BaseView):
    route_base = "/search"
    default_view = "index"
    # Everyone who has a home page may search; what each finds is what their role reads.
    class_permission_name = "Home"
    method_permission_name = {"index": "read"}

    @expose("/")
    @has_access
    def index(self):
        sm = current_app.appbuilder.sm

        def may_read(resource: str) -> bool:
            return sm.has_access("can_read", resource)

        raw = request.args.get("q", "")
        try:
            query, groups = services.search(raw, may_read)
        except DomainError as refusal:
            status = 200 if not raw.strip() else 400
            return self.render_template(
                "crm/search.html", title="Search", query=raw, groups=[], message=str(refusal)
            ), status
        return self.render_template(
            "crm/search.html", title="Search", query=query, groups=groups, message=None
        )

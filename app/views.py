"""Every screen and API of FinCRM, registered in one place (menu order = this order)."""

from __future__ import annotations

from flask_appbuilder import AppBuilder


def register_views(builder: AppBuilder) -> None:
    from app.leads.api import InteractionApi, LeadApi
    from app.leads.views import InteractionView, LeadView
    from app.org.api import BranchApi, StaffApi
    from app.org.views import BranchView, StaffView

    builder.add_view(
        LeadView, "Leads", icon="fa-user-plus", category="Sales", category_icon="fa-handshake-o"
    )
    builder.add_view(InteractionView, "Interactions", icon="fa-comments", category="Sales")
    builder.add_view(
        BranchView,
        "Branches",
        icon="fa-building",
        category="Organisation",
        category_icon="fa-sitemap",
    )
    builder.add_view(StaffView, "Staff", icon="fa-id-badge", category="Organisation")
    for api in (LeadApi, InteractionApi, BranchApi, StaffApi):
        builder.add_api(api)

"""Campaign screens (Sales desk): segments with their preview and a link to their people,
campaigns with progress and the schedule / cancel buttons, and who each campaign reached; the
public unsubscribe page (no sign-in: the signed link is the credential)."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_appbuilder import expose, has_access
from wtforms import TextAreaField

from app.campaigns import segments, services
from app.campaigns.models import (
    AUDIENCES,
    CAMPAIGN_CHANNELS,
    Campaign,
    CampaignRecipient,
    CampaignSegment,
)
from app.campaigns.unsubscribe import confirm_unsubscribe, describe, read_token
from app.core.audit import record_event
from app.core.crud import CrmSQLAInterface, ServiceModelView, run_action
from app.core.errors import DomainError, NotFound
from app.core.forms import choice_field, display_choice, display_timestamp
from app.core.localtime import to_utc, user_zone, zone_label
from app.extensions import db
from app.security.roles import VIEW_METHOD_ACTIONS
from app.security.scoping import acting_as_system


class CampaignRecipientView(ServiceModelView):
    """Who a campaign reached or skipped and why (read-only; each row visible where its client
    or lead is)."""

    datamodel = CrmSQLAInterface(CampaignRecipient)
    class_permission_name = "CampaignRecipient"
    base_permissions = ["can_read"]
    list_title = "Recipients"
    list_columns = ["campaign", "client", "lead", "status", "reason", "created_at"]
    show_columns = list_columns
    search_columns = ["campaign", "status", "reason", "client", "lead"]
    base_order = ("id", "desc")
    label_columns = {"created_at": "Handled (UTC)"}
    formatters_columns = {
        "status": display_choice,
        "reason": lambda v: display_choice(v) if v else "—",
        "created_at": display_timestamp,
    }


class CampaignSegmentView(ServiceModelView):
    datamodel = CrmSQLAInterface(CampaignSegment)
    class_permission_name = "CampaignSegment"
    prepare = staticmethod(segments.prepare_segment)
    show_template = "crm/segment_show.html"
    list_title = "Segments"
    list_columns = ["name", "audience", "criteria", "branch", "created_at"]
    add_columns = edit_columns = ["name", "audience", "criteria"]
    show_columns = ["name", "audience", "criteria", "branch", "created_by", "created_at"]
    search_columns = ["name", "audience", "branch"]
    base_order = ("id", "desc")
    label_columns = {"created_at": "Created (UTC)"}
    description_columns = {
        "criteria": (
            "JSON. Clients: segment, risk_profile, kyc_status, status (lists), branch (an id), "
            'marketing_consent (true/false), e.g. {"segment": ["hni", "uhni"], '
            '"marketing_consent": true}. Leads: status, source, investment_capacity, branch, '
            "marketing_consent. Without a status: active clients, open leads."
        )
    }
    formatters_columns = {"audience": display_choice, "created_at": display_timestamp}
    add_form_extra_fields = {
        "audience": choice_field("Audience", AUDIENCES),
        "criteria": TextAreaField(
            "Criteria", default="{}", description=description_columns["criteria"]
        ),
    }
    edit_form_extra_fields = add_form_extra_fields

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        try:
            segment = segments.get_segment(pk)
        except NotFound:
            abort(404)
        self.extra_args = {
            **self.extra_args,
            "preview": segments.describe_count(segment),
            "members_url": segments.members_url(segment),
        }
        return super().show(pk)


class CampaignView(ServiceModelView):
    datamodel = CrmSQLAInterface(Campaign)
    class_permission_name = "Campaign"
    method_permission_name = {**VIEW_METHOD_ACTIONS, "schedule": "write", "cancel": "write"}
    prepare = staticmethod(services.prepare_campaign)
    show_template = "crm/campaign_show.html"
    list_title = "Campaigns"
    list_columns = [
        "name",
        "code",
        "segment",
        "channel",
        "status",
        "scheduled_at",
        "sent_count",
        "skipped_count",
    ]
    add_columns = edit_columns = ["name", "code", "segment", "channel", "subject", "body"]
    show_columns = [
        "name",
        "code",
        "segment",
        "channel",
        "subject",
        "body",
        "status",
        "scheduled_at",
        "started_at",
        "finished_at",
        "branch",
        "created_by",
        "created_at",
    ]
    search_columns = ["name", "code", "status", "channel", "segment", "scheduled_at"]
    order_columns = ["name", "status", "scheduled_at"]
    base_order = ("id", "desc")
    label_columns = {
        "code": "Reference (UTM code)",
        "sent_count": "Sent",
        "skipped_count": "Skipped",
    }
    description_columns = {
        "code": "Leads that come in with ?utm_campaign=<this> (or this reference) count for it.",
        "body": "May use {first_name} and {name}; an unsubscribe link is added to every message.",
    }
    formatters_columns = {"channel": display_choice, "status": display_choice}
    add_form_extra_fields = {
        "channel": choice_field("Channel", CAMPAIGN_CHANNELS),
        "body": TextAreaField("Body", description=description_columns["body"]),
    }
    edit_form_extra_fields = add_form_extra_fields

    def pre_delete(self, item: Campaign) -> None:
        services.refuse_delete_unless_draft(item)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        try:
            campaign = services.get_campaign(pk)
        except NotFound:
            abort(404)
        from app.dashboards.links import EQ, REL, list_url

        mine = ("campaign", REL, campaign.id)
        self.extra_args = {
            **self.extra_args,
            "stats": services.campaign_stats(campaign),
            "audience": segments.describe_count(campaign.segment),
            "sent_url": list_url("CampaignRecipientView", [mine, ("status", EQ, "sent")]),
            "skipped_url": list_url("CampaignRecipientView", [mine, ("status", EQ, "skipped")]),
            "zone_name": zone_label(user_zone()),
        }
        return super().show(pk)

    def _workflow(self, pk: int, action, done: str):
        def run():
            campaign = services.get_campaign(pk)
            action(campaign)
            return campaign

        campaign, refusal = run_action(run, "campaign")
        if refusal:
            flash(f"Not done: {refusal}", "danger")
        else:
            flash(done, "success")
            services.start_if_due(campaign)
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))

    @expose("/schedule/<int:pk>", methods=["POST"])
    @has_access
    def schedule(self, pk: int):
        typed = (request.form.get("scheduled_at") or "").strip()

        def action(campaign):
            when = None
            if typed:
                try:
                    local = datetime.fromisoformat(typed)
                except ValueError as exc:
                    raise services.FieldError("is not a time.", "scheduled_at") from exc
                when = to_utc(local, user_zone(), "scheduled_at")
            services.schedule_campaign(campaign, when)

        return self._workflow(pk, action, "Campaign scheduled.")

    @expose("/cancel/<int:pk>", methods=["POST"])
    @has_access
    def cancel(self, pk: int):
        return self._workflow(pk, services.cancel_campaign, "Campaign cancelled.")


# ---- the public unsubscribe page ---------------------------------------------------------------

campaign_unsubscribe = Blueprint("campaign_unsubscribe", __name__, url_prefix="/unsubscribe")


def _page(status: int = 200, **context):
    builder = current_app.appbuilder
    return render_template(
        "public/unsubscribe.html",
        base_template=builder.base_template,
        appbuilder=builder,
        **context,
    ), status


@campaign_unsubscribe.route("/<string:token>", methods=["GET", "POST"])
def unsubscribe(token: str):
    """GET: the confirm page. POST: the confirmation, from the page or from a mail client's
    one-click unsubscribe (RFC 8058: ``List-Unsubscribe=One-Click`` in the body)."""
    try:
        with acting_as_system():
            link = read_token(token)
            who = describe(link)
    except DomainError as exc:
        db.session.rollback()
        record_event("rejected", record_type="campaign", detail=f"unsubscribe link: {exc}")
        return _page(exc.status, error=str(exc))
    if request.method == "GET":
        return _page(who=who)
    how = "one-click" if request.form.get("List-Unsubscribe") == "One-Click" else "confirm page"
    with acting_as_system():
        confirm_unsubscribe(link, how)
        db.session.commit()
    return _page(who=who, done=True)

"""Campaigns API: segments (checked by the same service as the screens) and their preview;
campaigns with ``schedule``, ``cancel`` and ``stats``; who each campaign reached (read-only)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask_appbuilder.api import expose, protect, safe

from app.campaigns import segments, services
from app.campaigns.models import Campaign, CampaignRecipient, CampaignSegment
from app.core.crud import (
    CrmSQLAInterface,
    ReadOnlyRestApi,
    ServiceModelRestApi,
    json_body,
    readable_columns,
)
from app.core.errors import DomainError, FieldError
from app.security.roles import API_METHOD_ACTIONS

SEGMENT_FIELDS = ["name", "audience", "criteria"]
CAMPAIGN_FIELDS = ["name", "code", "segment_id", "channel", "subject", "body"]


class CampaignSegmentApi(ServiceModelRestApi):
    resource_name = "campaignsegment"
    datamodel = CrmSQLAInterface(CampaignSegment)
    class_permission_name = "CampaignSegment"
    method_permission_name = {**API_METHOD_ACTIONS, "preview": "read"}
    prepare = staticmethod(segments.prepare_segment)
    allow_browser_login = True
    list_columns = show_columns = ["id", *SEGMENT_FIELDS, "branch_id", "created_at"]
    add_columns = edit_columns = SEGMENT_FIELDS
    search_columns = ["name", "audience", "branch_id"]

    @expose("/<int:pk>/preview", methods=["GET"])
    @protect()
    @safe
    def preview(self, pk: int):
        """How many people the segment holds (among those you may see), capped, and a link to
        the list of them.
        ---
        get:
          responses:
            200: {description: "count, at_least (more than the cap), text, list_url"}
            404: {$ref: '#/components/responses/404'}
        """
        try:
            segment = segments.get_segment(pk)
            count, more = segments.preview_count(segment)
        except DomainError as exc:
            return self.response(exc.status, **exc.as_json())
        return self.response(
            200,
            count=count,
            at_least=more,
            text=segments.describe_count(segment),
            list_url=segments.members_url(segment),
        )


def _instant(value: object) -> datetime | None:
    """An ISO 8601 time (UTC when it has no offset), or None."""
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise FieldError("is not an ISO 8601 time.", "scheduled_at") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class CampaignApi(ServiceModelRestApi):
    resource_name = "campaign"
    datamodel = CrmSQLAInterface(Campaign)
    class_permission_name = "Campaign"
    method_permission_name = {
        **API_METHOD_ACTIONS,
        "schedule": "write",
        "cancel": "write",
        "stats": "read",
    }
    prepare = staticmethod(services.prepare_campaign)
    allow_browser_login = True
    list_columns = show_columns = [
        "id",
        *CAMPAIGN_FIELDS,
        "status",
        "scheduled_at",
        "started_at",
        "finished_at",
        "sent_count",
        "skipped_count",
        "branch_id",
        "created_at",
    ]
    add_columns = edit_columns = CAMPAIGN_FIELDS
    search_columns = ["name", "code", "status", "channel", "segment_id"]

    def pre_delete(self, item: Campaign) -> None:
        services.refuse_delete_unless_draft(item)

    @expose("/<int:pk>/schedule", methods=["POST"])
    @protect()
    @safe
    def schedule(self, pk: int):
        """Schedule a draft: ``{"scheduled_at": "2026-12-08T09:00:00Z"}`` (now when left out).
        ---
        post:
          responses:
            200: {description: the campaign's status and time}
            409: {description: not a draft}
        """
        holder: dict = {}

        def action():
            when = _instant(json_body().get("scheduled_at"))
            holder["campaign"] = services.schedule_campaign(services.get_campaign(pk), when)
            return holder["campaign"]

        response = self.run_workflow(
            action,
            lambda c: {"status": c.status, "scheduled_at": c.scheduled_at.isoformat()},
        )
        if response.status_code == 200:
            services.start_if_due(holder["campaign"])
        return response

    @expose("/<int:pk>/cancel", methods=["POST"])
    @protect()
    @safe
    def cancel(self, pk: int):
        """Cancel a draft, scheduled or sending campaign.
        ---
        post:
          responses:
            200: {description: the campaign's status}
            409: {description: already sent or cancelled}
        """
        return self.run_workflow(
            lambda: services.cancel_campaign(services.get_campaign(pk)),
            lambda c: {"status": c.status},
        )

    @expose("/<int:pk>/stats", methods=["GET"])
    @protect()
    @safe
    def stats(self, pk: int):
        """Sent and skipped (by reason), leads brought in and converted.
        ---
        get:
          responses:
            200: {description: the campaign's figures}
            404: {$ref: '#/components/responses/404'}
        """
        try:
            campaign = services.get_campaign(pk)
        except DomainError as exc:
            return self.response(exc.status, **exc.as_json())
        return self.response(200, **services.campaign_stats(campaign))


class CampaignRecipientApi(ReadOnlyRestApi):
    """Who a campaign reached or skipped, and why (written by the send, once per person)."""

    resource_name = "campaignrecipient"
    datamodel = CrmSQLAInterface(CampaignRecipient)
    class_permission_name = "CampaignRecipient"
    base_permissions = ["can_read"]
    list_columns = show_columns = readable_columns(CampaignRecipient)
    search_columns = ["campaign_id", "client_id", "lead_id", "status", "reason"]
    base_order = ("id", "desc")

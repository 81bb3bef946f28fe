"""Offer screens: the offers list, add and edit (checked by ``services.prepare_offer``), and
the offer's page with its audience preview, a "Send now" button and the deliveries so far."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.fieldwidgets import Select2ManyWidget, Select2Widget
from wtforms import (
    BooleanField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    TextAreaField,
)
from wtforms.validators import Optional

from app.clients.models import RISK_PROFILES, SEGMENTS
from app.core.audit import record_rejection
from app.core.crud import CrmSQLAInterface, ServiceModelView
from app.core.errors import DomainError, NotFound
from app.core.forms import choice_field, display_choice, display_timestamp
from app.extensions import db
from app.offers import services
from app.offers.models import ACTIVITY_RULES, OFFER_CHANNELS, Offer, OfferDelivery
from app.security.roles import VIEW_METHOD_ACTIONS


class SubsetField(SelectMultipleField):
    """Several of a fixed list of values, stored comma-separated (``affluent,hni``)."""

    def process_data(self, value: Any) -> None:
        if isinstance(value, str):
            value = [item for item in value.split(",") if item]
        super().process_data(value)

    def populate_obj(self, obj: Any, name: str) -> None:
        setattr(obj, name, ",".join(self.data or []) or None)


def _subset_field(label: str, choices: tuple[str, ...], description: str) -> SubsetField:
    return SubsetField(
        label,
        choices=[(value, _label(value)) for value in choices],
        widget=Select2ManyWidget(),
        validators=[Optional()],
        description=description,
    )


def _occasions() -> list[tuple[str, str]]:
    calendar = services.festival_calendar()
    return [("", "— none (any day) —")] + [
        (name, f"{name} ({day:%d %b %Y})")
        for name, day in sorted(calendar.items(), key=lambda i: i[1])
    ]


ACRONYMS = {"hni": "HNI", "uhni": "UHNI"}


def _label(value: str) -> str:
    return ACRONYMS.get(value) or display_choice(value)


def _display_subset(value: str | None) -> str:
    return ", ".join(_label(v) for v in value.split(",")) if value else "All"


def _or_dash(value: object) -> str:
    return "—" if value is None else str(value)


class OfferDeliveryView(ServiceModelView):
    """Who received an offer and when (read-only; each client's row visible where the client
    is)."""

    datamodel = CrmSQLAInterface(OfferDelivery)
    class_permission_name = "OfferDelivery"
    base_permissions = ["can_read"]
    list_title = "Deliveries"
    list_columns = ["client", "offer", "sent_at", "notification_id"]
    show_columns = list_columns
    search_columns = ["offer", "client", "sent_at"]
    base_order = ("id", "desc")
    label_columns = {"sent_at": "Sent (UTC)", "notification_id": "Outbox row"}
    formatters_columns = {"sent_at": display_timestamp}


OFFER_FIELDS = [
    "name",
    "channel",
    "subject",
    "body",
    "segments",
    "risk_profiles",
    "activity",
    "activity_days",
    "occasion",
    "lead_days",
    "starts_on",
    "ends_on",
    "active",
]


class OfferView(ServiceModelView):
    datamodel = CrmSQLAInterface(Offer)
    class_permission_name = "Offer"
    method_permission_name = {**VIEW_METHOD_ACTIONS, "run": "write"}
    prepare = staticmethod(services.prepare_offer)
    related_views = [OfferDeliveryView]
    show_template = "crm/offer_show.html"

    list_title = "Offers"
    list_columns = [
        "name",
        "channel",
        "segments",
        "activity",
        "occasion",
        "starts_on",
        "ends_on",
        "active",
    ]
    add_columns = edit_columns = OFFER_FIELDS
    show_columns = [*OFFER_FIELDS, "created_by", "created_at"]
    search_columns = ["name", "channel", "occasion", "active"]
    order_columns = ["name", "starts_on", "ends_on"]
    base_order = ("id", "desc")
    label_columns = {
        "activity_days": "Activity days",
        "lead_days": "Days before the occasion",
        "starts_on": "Starts on",
        "ends_on": "Ends on",
        "risk_profiles": "Risk profiles",
        "created_at": "Created (UTC)",
    }
    description_columns = {
        "body": "May use {first_name} and {name}; write {{ or }} for a literal brace.",
        "activity_days": "Active: an interaction within this many days; inactive: none.",
        "lead_days": "Sent from this many days before the occasion up to its day.",
    }
    formatters_columns = {
        "channel": display_choice,
        "activity": display_choice,
        "segments": _display_subset,
        "risk_profiles": _display_subset,
        "activity_days": _or_dash,
        "occasion": _or_dash,
        "starts_on": _or_dash,
        "ends_on": _or_dash,
        "created_at": display_timestamp,
    }
    add_form_extra_fields = {
        "channel": choice_field("Channel", OFFER_CHANNELS),
        "activity": choice_field("Activity rule", ACTIVITY_RULES),
        "segments": _subset_field("Segments", SEGMENTS, "Leave empty for every segment."),
        "risk_profiles": _subset_field(
            "Risk profiles", RISK_PROFILES, "Leave empty for any risk profile."
        ),
        "occasion": SelectField(
            "Occasion",
            choices=_occasions,
            widget=Select2Widget(),
            validators=[Optional()],
            description="A festival or holiday from the calendar in settings (CRM_FESTIVALS).",
        ),
        "body": TextAreaField("Body", description=description_columns["body"]),
        # Checked by the service: 0 days and "switched off" are valid answers, not missing ones.
        "lead_days": IntegerField(
            "Days before the occasion",
            default=0,
            validators=[Optional()],
            description=description_columns["lead_days"],
        ),
        "active": BooleanField("Active", default=True),
    }
    edit_form_extra_fields = add_form_extra_fields

    def pre_delete(self, item: Offer) -> None:
        services.refuse_delete_when_sent(item)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        try:
            offer = services.get_offer(pk)
        except NotFound:
            abort(404)
        self.extra_args = {
            **self.extra_args,
            "audience": services.describe_audience(offer),
            "due_today": services.is_due(offer, services.utcnow().date()),
            "window": services.sending_window(offer),
        }
        return super().show(pk)

    @expose("/run/<int:pk>", methods=["POST"])
    @has_access
    def run(self, pk: int):
        try:
            sent = services.run_offer_now(pk)
        except NotFound:
            db.session.rollback()
            abort(404)
        except DomainError as exc:
            db.session.rollback()
            record_rejection("offer", str(exc))
            flash(f"Not sent: {exc}", "danger")
        else:
            flash(f"Offer sent to {sent:,} client{'s' if sent != 1 else ''}.", "success")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))

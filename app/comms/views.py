"""Screens: the notification centre (everyone), the outbox and message log (Admin), preferences."""

from __future__ import annotations

from flask import Response, flash, g, jsonify, redirect, request, stream_with_context, url_for
from flask_appbuilder import BaseView, ModelView, action, expose, has_access
from wtforms import BooleanField

from app.clients.models import Client
from app.comms import live, services
from app.comms.models import DIGESTS, MessageLog, Notification, NotificationPreference
from app.core.crud import CrmSQLAInterface, NoFileDownloadMixin, ServiceModelView, filtered_list_url
from app.core.errors import DomainError
from app.core.forms import choice_field, display_choice, display_timestamp, optional_relation_field
from app.core.localtime import LocalTimeColumnsMixin
from app.exports.lists import ExportableListMixin
from app.extensions import db
from app.org.services import assignable_staff
from app.security.roles import VIEW_METHOD_ACTIONS


class NotificationCenterView(BaseView):
    """Each signed-in member of staff's own in-app notifications."""

    route_base = "/notifications"
    default_view = "index"
    class_permission_name = "Notification"
    method_permission_name = {
        "index": "read",
        "mark_read": "read",
        "mark_all_read": "read",
        "stream": "read",
        "latest": "read",
    }

    @expose("/")
    @has_access
    def index(self):
        page = max(request.args.get("page", 1, type=int), 1)
        rows = services.inbox(g.user.id, limit=50, offset=(page - 1) * 50)
        return self.render_template(
            "crm/notifications.html", notifications=rows, page=page, title="Notifications"
        )

    @expose("/latest")
    @has_access
    def latest(self):
        """The unread count and newest unread notification, for a page that polls (no Redis)."""
        return jsonify(live.state_of(g.user.id)), 200, {"Cache-Control": "no-store"}

    @expose("/stream")
    @has_access
    def stream(self):
        """Server-Sent Events of the user's notification state (see app.comms.live)."""
        if live.redis_client() is None:
            message = "Live updates need Redis; GET /notifications/latest answers the state."
            return jsonify(message=message), 404
        events = stream_with_context(live.stream_events(g.user.id))
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return Response(events, mimetype="text/event-stream", headers=headers)

    @expose("/<int:pk>/read", methods=["POST"])
    @has_access
    def mark_read(self, pk: int):
        services.mark_read(g.user.id, pk)
        db.session.commit()
        return redirect(request.form.get("next") or url_for(".index"))

    @expose("/read-all", methods=["POST"])
    @has_access
    def mark_all_read(self):
        count = services.mark_read(g.user.id)
        db.session.commit()
        flash(f"{count} notification(s) marked as read.", "info")
        return redirect(url_for(".index"))


class OutboxView(LocalTimeColumnsMixin, ExportableListMixin, NoFileDownloadMixin, ModelView):
    """Every notification row and where it stands; failed ones can be sent again."""

    datamodel = CrmSQLAInterface(Notification)
    class_permission_name = "Outbox"
    method_permission_name = {**VIEW_METHOD_ACTIONS, "retry": "write"}
    base_permissions = ["can_read", "can_write"]
    list_title = "Outbox"
    list_columns = [
        "created_at",
        "channel",
        "kind",
        "recipient_user",
        "address",
        "subject",
        "status",
        "attempts",
        "sent_at",
    ]
    show_columns = list_columns + [
        "idempotency_key",
        "body",
        "related_type",
        "related_id",
        "next_attempt_at",
        "last_error",
        "read_at",
    ]
    search_columns = ["status", "channel", "kind", "recipient_user", "address", "created_at"]
    order_columns = ["created_at", "status", "attempts"]
    base_order = ("id", "desc")
    formatters_columns = {
        "status": display_choice,
        "kind": display_choice,
        "sent_at": display_timestamp,
    }

    @action(
        "retry",
        "Send again",
        "Send the selected failed notifications again?",
        "fa-repeat",
        single=False,
    )
    def retry(self, items):
        rows = items if isinstance(items, list) else [items]
        count = services.requeue_failed([item.id for item in rows])
        db.session.commit()
        flash(f"{count} notification(s) queued again.", "info")
        return redirect(url_for(f"{self.endpoint}.list"))


class MessageLogView(LocalTimeColumnsMixin, ExportableListMixin, NoFileDownloadMixin, ModelView):
    datamodel = CrmSQLAInterface(MessageLog)
    class_permission_name = "MessageLog"
    method_permission_name = {**VIEW_METHOD_ACTIONS, "record_messages": "read"}
    base_permissions = ["can_read"]
    list_title = "Message log"
    list_columns = [
        "occurred_at",
        "direction",
        "channel",
        "recipient",
        "subject",
        "status",
        "related_type",
        "related_id",
    ]
    show_columns = list_columns + ["sender", "body", "error", "notification_id"]
    search_columns = ["channel", "status", "recipient", "related_type", "related_id", "occurred_at"]
    order_columns = ["occurred_at"]
    base_order = ("occurred_at", "desc")
    formatters_columns = {"status": display_choice, "occurred_at": display_timestamp}

    @expose("/record/<string:record_type>/<string:record_id>")
    @has_access
    def record_messages(self, record_type: str, record_id: str):
        """Messages about one record (linked from the record's page)."""
        return redirect(
            filtered_list_url(self, {"related_type": record_type, "related_id": record_id})
        )


def _prepare_preference(preference: NotificationPreference) -> NotificationPreference:
    from app.core.errors import FieldError

    if preference.user is not None:
        preference.user_id = preference.user.id
    if preference.client is not None:
        preference.client_id = preference.client.id
    if (preference.user_id is None) == (preference.client_id is None):
        raise FieldError("choose one member of staff or one client.", "user")
    if preference.digest not in DIGESTS:
        raise FieldError(f"must be one of: {', '.join(DIGESTS)}.", "digest")
    return preference


class PreferenceView(ServiceModelView):
    """Notification preferences of staff and clients (Admin and managers)."""

    datamodel = CrmSQLAInterface(NotificationPreference)
    class_permission_name = "NotificationPreference"
    prepare = staticmethod(_prepare_preference)
    list_title = "Notification preferences"
    list_columns = ["user", "client", "email_enabled", "sms_enabled", "in_app_enabled", "digest"]
    add_columns = ["user", "client", "email_enabled", "sms_enabled", "in_app_enabled", "digest"]
    edit_columns = add_columns
    show_columns = list_columns
    add_form_extra_fields = {
        # Plain check boxes: FAB would make a non-nullable boolean "required" (always ticked).
        "email_enabled": BooleanField("E-mail", default=True),
        "sms_enabled": BooleanField("SMS"),
        "in_app_enabled": BooleanField("In the app", default=True),
        "digest": choice_field("Digest", DIGESTS),
        "user": optional_relation_field("Member of staff", assignable_staff, "—"),
        "client": optional_relation_field(
            "Client", lambda: db.session.query(Client).order_by(Client.name).limit(500), "—"
        ),
    }
    edit_form_extra_fields = add_form_extra_fields


class MyPreferencesView(BaseView):
    """Each member of staff sets their own channels and digest."""

    route_base = "/my-preferences"
    default_view = "edit"
    class_permission_name = "Notification"
    method_permission_name = {"edit": "read"}

    @expose("/", methods=["GET", "POST"])
    @has_access
    def edit(self):
        if request.method == "POST":
            try:
                services.save_staff_preferences(
                    g.user.id,
                    email=request.form.get("email_enabled") == "on",
                    sms=request.form.get("sms_enabled") == "on",
                    in_app=request.form.get("in_app_enabled") == "on",
                    digest=request.form.get("digest", "none"),
                )
                db.session.commit()
                flash("Preferences saved.", "success")
            except DomainError as exc:
                db.session.rollback()
                flash(str(exc), "danger")
            return redirect(url_for(".edit"))
        prefs = services.preferences_for(user_id=g.user.id)
        return self.render_template(
            "crm/my_preferences.html", prefs=prefs, digests=DIGESTS, title="My notifications"
        )

"""Communication API: the signed-in user's own in-app notifications (mark read) and
preferences, the outbox and the message log (read; failed sends can be queued again), and
the notification preferences of staff and clients."""

from __future__ import annotations

from typing import Any

from flask import g, request
from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.models.sqla.filters import FilterEqual
from marshmallow import Schema, fields, validate

from app.comms import services
from app.comms.models import DIGESTS, MessageLog, Notification, NotificationPreference
from app.comms.views import _prepare_preference
from app.core.audit import record_rejection
from app.core.crud import (
    CrmSQLAInterface,
    FilterCurrentUser,
    ReadOnlyRestApi,
    ServiceModelRestApi,
    readable_columns,
)
from app.core.errors import DomainError, FieldError
from app.extensions import db
from app.security.roles import API_METHOD_ACTIONS

INBOX_COLUMNS = ["id", "kind", "subject", "body", "link", "created_at", "read_at"]


class MyPreferences(Schema):
    email = fields.Boolean()
    sms = fields.Boolean()
    in_app = fields.Boolean()
    digest = fields.String(validate=validate.OneOf(DIGESTS))


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise FieldError("must be true or false.", name)
    return value


class NotificationApi(ReadOnlyRestApi):
    """``/api/v1/notification/``: my own in-app notifications, newest first, whatever my role
    (Admin included: the outbox is where every row is)."""

    resource_name = "notification"
    datamodel = CrmSQLAInterface(Notification)
    class_permission_name = "Notification"
    base_permissions = ["can_read"]
    method_permission_name = {
        **API_METHOD_ACTIONS,
        "mark_read": "read",
        "mark_all_read": "read",
        "my_preferences": "read",
        "save_my_preferences": "read",
    }
    include_route_methods = {
        "get",
        "get_list",
        "info",
        "mark_read",
        "mark_all_read",
        "my_preferences",
        "save_my_preferences",
    }
    base_filters = [
        ["recipient_user_id", FilterCurrentUser, None],
        ["channel", FilterEqual, "in_app"],
    ]
    list_columns = show_columns = INBOX_COLUMNS
    openapi_spec_component_schemas = (MyPreferences,)
    search_columns = ["kind", "read_at", "created_at"]
    order_columns = ["id", "created_at"]
    base_order = ("id", "desc")

    @expose("/<int:pk>/read", methods=["POST"])
    @protect()
    @safe
    def mark_read(self, pk: int):
        """Mark one of my notifications as read.
        ---
        post:
          responses:
            200:
              description: marked (0 when it was read already)
              content:
                application/json:
                  schema: {type: object, properties: {marked: {type: integer}}}
            404: {$ref: '#/components/responses/404'}
        """
        if self.datamodel.get(pk, self._base_filters) is None:
            return self.response_404()
        marked = services.mark_read(g.user.id, pk)
        db.session.commit()
        return self.response(200, marked=marked)

    @expose("/read_all", methods=["POST"])
    @protect()
    @safe
    def mark_all_read(self):
        """Mark every one of my notifications as read.
        ---
        post:
          responses:
            200:
              description: how many were marked
              content:
                application/json:
                  schema: {type: object, properties: {marked: {type: integer}}}
        """
        marked = services.mark_read(g.user.id)
        db.session.commit()
        return self.response(200, marked=marked)

    @expose("/preferences", methods=["GET"])
    @protect()
    @safe
    def my_preferences(self):
        """My channels and digest.
        ---
        get:
          responses:
            200:
              description: my preferences
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/MyPreferences'}
        """
        prefs = services.preferences_for(user_id=g.user.id)
        return self.response(
            200,
            email=prefs.email,
            sms=prefs.sms,
            in_app=prefs.in_app,
            digest=prefs.digest,
        )

    @expose("/preferences", methods=["PUT"])
    @protect()
    @safe
    def save_my_preferences(self):
        """Set my channels and digest (``{"email": true, "sms": false, "in_app": true,
        "digest": "daily"}``; a field left out keeps its value).
        ---
        put:
          requestBody:
            content:
              application/json:
                schema: {$ref: '#/components/schemas/MyPreferences'}
          responses:
            200:
              description: saved
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/MyPreferences'}
            422: {$ref: '#/components/responses/422'}
        """
        body = request.get_json(silent=True)
        current = services.preferences_for(user_id=g.user.id)
        try:
            if not isinstance(body, dict):
                raise FieldError("send a JSON object.", "body")
            digest = body.get("digest", current.digest)
            if digest not in DIGESTS:
                raise FieldError(f"must be one of: {', '.join(DIGESTS)}.", "digest")
            row = services.save_staff_preferences(
                g.user.id,
                email=_flag(body, "email", current.email),
                sms=_flag(body, "sms", current.sms),
                in_app=_flag(body, "in_app", current.in_app),
                digest=digest,
            )
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            record_rejection("notification_preference", str(exc))
            return self.response(exc.status, **exc.as_json())
        return self.response(
            200,
            email=row.email_enabled,
            sms=row.sms_enabled,
            in_app=row.in_app_enabled,
            digest=row.digest,
        )


class OutboxApi(ReadOnlyRestApi):
    """Every notification row and where it stands (Admin); failed ones can be sent again."""

    resource_name = "outbox"
    datamodel = CrmSQLAInterface(Notification)
    class_permission_name = "Outbox"
    base_permissions = ["can_read", "can_write"]
    method_permission_name = {**API_METHOD_ACTIONS, "retry": "write"}
    include_route_methods = {"get", "get_list", "info", "retry"}
    list_columns = show_columns = readable_columns(Notification)
    search_columns = ["status", "channel", "kind", "recipient_user_id", "recipient_client_id"]
    order_columns = ["id", "created_at", "status", "attempts"]
    base_order = ("id", "desc")

    @expose("/<int:pk>/retry", methods=["POST"])
    @protect()
    @safe
    def retry(self, pk: int):
        """Send a failed notification again from scratch.
        ---
        post:
          responses:
            200:
              description: queued again
              content:
                application/json:
                  schema: {type: object, properties: {queued: {type: integer}}}
            404: {$ref: '#/components/responses/404'}
            409: {description: the notification has not failed}
        """
        item = self.datamodel.get(pk)
        if item is None:
            return self.response_404()
        if item.status != "failed":
            record_rejection("notification", f"retry of a {item.status} notification")
            return self.response(
                409, message=f"only failed notifications are sent again; this one is {item.status}."
            )
        queued = services.requeue_failed([pk])
        db.session.commit()
        return self.response(200, queued=queued)


class MessageLogApi(ReadOnlyRestApi):
    """Every message that went out or came in (Admin, Compliance, Auditor)."""

    resource_name = "messagelog"
    datamodel = CrmSQLAInterface(MessageLog)
    class_permission_name = "MessageLog"
    base_permissions = ["can_read"]
    list_columns = show_columns = readable_columns(MessageLog)
    search_columns = ["channel", "status", "recipient", "related_type", "related_id"]
    order_columns = ["id", "occurred_at"]
    base_order = ("id", "desc")


class NotificationPreferenceApi(ServiceModelRestApi):
    """Channels and digest of one member of staff or one client (Admin)."""

    resource_name = "notificationpreference"
    datamodel = CrmSQLAInterface(NotificationPreference)
    class_permission_name = "NotificationPreference"
    base_permissions = ["can_read", "can_write", "can_delete"]
    prepare = staticmethod(_prepare_preference)
    allow_browser_login = True
    list_columns = show_columns = readable_columns(NotificationPreference)
    add_columns = [
        "user_id",
        "client_id",
        "email_enabled",
        "sms_enabled",
        "in_app_enabled",
        "digest",
    ]
    edit_columns = ["email_enabled", "sms_enabled", "in_app_enabled", "digest"]
    search_columns = ["user_id", "client_id", "digest"]

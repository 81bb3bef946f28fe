"""Support cases over the API: opened and listed like any record (FAB's filters), worked through
actions with the same rules as the queue screen."""

from __future__ import annotations

from flask import request
from flask_appbuilder.api import expose, protect, safe

from app.core.crud import (
    CrmSQLAInterface,
    ReadOnlyRestApi,
    ServiceModelRestApi,
    json_body,
    readable_columns,
)
from app.core.errors import DomainError
from app.security.roles import API_METHOD_ACTIONS, INGEST, READ, WRITE
from app.support import inbound, services, transcripts
from app.support.models import SupportCase, SupportMessage, SupportTranscript

READ_COLUMNS = [
    "id",
    "client_id",
    "channel",
    "subject",
    "description",
    "priority",
    "status",
    "assignee_id",
    "opened_by_id",
    "opened_at",
    "sla_started_at",
    "sla_due_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "breach_notified_at",
]


def _case_answer(case: SupportCase) -> dict:
    return {"result": services.case_json(case)}


class SupportCaseApi(ServiceModelRestApi):
    """Support cases: list (FAB's ``q`` filters, or ``/queue`` with the screen's filters), get,
    open, edit subject and priority; move, assign, take, reply, attach a chat transcript; the
    mail gateway files raw e-mail with ``/ingest``."""

    resource_name = "supportcase"
    datamodel = CrmSQLAInterface(SupportCase)
    class_permission_name = "SupportCase"
    method_permission_name = {
        **API_METHOD_ACTIONS,
        "queue": READ,
        "conversation": READ,
        "transition": WRITE,
        "assign": WRITE,
        "take": WRITE,
        "reply": WRITE,
        "transcript": WRITE,
        "ingest": INGEST,
    }
    include_route_methods = {
        "get",
        "get_list",
        "info",
        "post",
        "put",
        "queue",
        "conversation",
        "transition",
        "assign",
        "take",
        "reply",
        "transcript",
        "ingest",
    }
    prepare = staticmethod(services.prepare_case)
    allow_browser_login = True

    list_columns = READ_COLUMNS
    show_columns = READ_COLUMNS
    add_columns = ["client_id", "channel", "subject", "description", "priority"]
    edit_columns = ["subject", "description", "priority"]
    search_columns = ["client_id", "status", "priority", "assignee_id", "channel", "sla_due_at"]
    order_columns = ["id", "sla_due_at", "opened_at", "priority", "status"]
    base_order = ("sla_due_at", "asc")

    @expose("/queue", methods=["GET"])
    @protect()
    @safe
    def queue(self):
        """The queue's cases: ``status`` (comma-separated, ``all``), ``priority``, ``assignee``
        (an id, ``me``, ``none``), ``breached`` (yes/no), ``sort`` (due, -due, opened).
        ---
        get:
          responses:
            200: {description: the cases, due first}
            422: {description: a filter with a value it does not know}
        """
        try:
            filters = services.parse_queue_filters(request.args)
        except DomainError as exc:
            return self._refused(exc)
        cases = services.queue_cases(filters)
        return self.response(200, count=len(cases), result=[services.case_json(c) for c in cases])

    @expose("/<int:pk>/messages", methods=["GET"])
    @protect()
    @safe
    def conversation(self, pk: int):
        """The case's conversation, oldest first.
        ---
        get:
          responses:
            200: {description: the messages}
            404: {$ref: '#/components/responses/404'}
        """
        try:
            messages = services.conversation(pk)
        except DomainError as exc:
            return self._refused(exc)
        return self.response(200, result=[services.message_json(m) for m in messages])

    @expose("/<int:pk>/transition", methods=["POST"])
    @protect()
    @safe
    def transition(self, pk: int):
        """Move the case (JSON ``{"status": "resolved", "note": "..."}``).
        ---
        post:
          responses:
            200: {description: moved}
            404: {$ref: '#/components/responses/404'}
            409: {description: the workflow does not allow that move}
            422: {description: an unknown status}
        """
        body = json_body()
        return self.run_workflow(
            lambda: services.transition_case(pk, body.get("status"), body.get("note")),
            _case_answer,
        )

    @expose("/<int:pk>/assign", methods=["POST"])
    @protect()
    @safe
    def assign(self, pk: int):
        """Give the case to a colleague (JSON ``{"assignee_id": 7}``).
        ---
        post:
          responses:
            200: {description: assigned}
            404: {$ref: '#/components/responses/404'}
            422: {description: not someone who works this branch's cases}
        """
        assignee = json_body().get("assignee_id")
        return self.run_workflow(lambda: services.assign_case(pk, assignee), _case_answer)

    @expose("/<int:pk>/take", methods=["POST"])
    @protect()
    @safe
    def take(self, pk: int):
        """Take the case: it is yours, and opened if it was new.
        ---
        post:
          responses:
            200: {description: taken}
            404: {$ref: '#/components/responses/404'}
        """
        return self.run_workflow(lambda: services.take_case(pk), _case_answer)

    @expose("/<int:pk>/reply", methods=["POST"])
    @protect()
    @safe
    def reply(self, pk: int):
        """E-mail the client (JSON ``{"body": "...", "then_status": "waiting"}``), through the
        outbox.
        ---
        post:
          responses:
            201: {description: queued for sending}
            404: {$ref: '#/components/responses/404'}
            409: {description: the case is closed}
            422: {description: no text, or the client has no e-mail address}
        """
        body = json_body()
        return self.run_workflow(
            lambda: services.reply_to_case(pk, body.get("body"), body.get("then_status")),
            lambda message: {"result": services.message_json(message)},
            status=201,
        )

    @expose("/<int:pk>/transcript", methods=["POST"])
    @protect()
    @safe
    def transcript(self, pk: int):
        """Attach a chat transcript: a JSON body, or a JSON file in the form field ``file``.
        ---
        post:
          responses:
            201: {description: attached}
            404: {$ref: '#/components/responses/404'}
            409: {description: already attached, or the case is closed}
            422: {description: not JSON, too large, or a message without time, side or text}
        """
        upload = request.files.get("file")
        if upload is not None:
            data, content_type, name = upload.read(), upload.mimetype, upload.filename
        else:
            data, content_type, name = request.get_data(), request.mimetype, None
        return self.run_workflow(
            lambda: transcripts.attach_transcript(pk, data, content_type, name),
            lambda t: {"result": {"id": t.id, "case_id": t.case_id, "messages": t.message_count}},
            status=201,
        )

    @expose("/ingest", methods=["POST"])
    @protect()
    @safe
    def ingest(self):
        """File a raw e-mail (RFC 822, the request's body or the form field ``file``) into its
        case, or a new case for the client with the sender's address.
        ---
        post:
          responses:
            201: {description: filed}
            409: {description: already filed, or several clients share the address}
            422: {description: not an e-mail, not to the support address, or an unknown sender}
        """
        upload = request.files.get("file")
        raw = upload.read() if upload is not None else request.get_data()
        return self.run_workflow(
            lambda: inbound.ingest_email(raw),
            lambda done: {
                "result": {
                    "case_id": done.case.id,
                    "message_id": done.message.id,
                    "created": done.created,
                    "matched_by": done.how,
                }
            },
            status=201,
        )


class SupportMessageApi(ReadOnlyRestApi):
    """Every case's conversation (row-scoped through the case)."""

    resource_name = "supportmessage"
    datamodel = CrmSQLAInterface(SupportMessage)
    class_permission_name = "SupportCase"
    base_permissions = ["can_read", "can_write", "can_ingest"]
    list_columns = show_columns = readable_columns(SupportMessage)
    search_columns = ["case_id", "direction", "channel"]
    base_order = ("occurred_at", "asc")


class SupportTranscriptApi(ReadOnlyRestApi):
    """The chat transcripts attached to cases (their lines are in ``supportmessage``)."""

    resource_name = "supporttranscript"
    datamodel = CrmSQLAInterface(SupportTranscript)
    class_permission_name = "SupportCase"
    base_permissions = ["can_read", "can_write", "can_ingest"]
    list_columns = show_columns = readable_columns(SupportTranscript)
    search_columns = ["case_id", "uploaded_by_id"]
    base_order = ("uploaded_at", "asc")

"""Support screens: the queue (Work > Support queue) and the cases (Work > Support cases).

The queue filters by status, priority, assignee and breach, sorts by due time and shows each
case's due time in its client's branch's time zone with the time left or overdue; its buttons
take, assign and move cases. A case's page shows its conversation, with a reply form, the
moves the workflow allows and a chat transcript upload. Every action is one unit of work; a
refusal is flashed in words and written to the audit log.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select

from app.core.audit import record_rejection
from app.core.crud import CrmSQLAInterface, NoButtonsForMissingRoutes, ServiceModelView, run_action
from app.core.errors import DomainError, NotFound
from app.core.forms import display_choice, display_timestamp
from app.core.localtime import format_local, zone_of_client
from app.extensions import db
from app.security.roles import READ, ROLES, VIEW_METHOD_ACTIONS, WRITE, allowed
from app.support import services, transcripts
from app.support.models import CASE_STATUSES, PRIORITIES, SupportCase


def _due_column(case: SupportCase) -> str:
    return format_local(case.sla_due_at, zone_of_client(case.client_id))


class SupportCaseView(NoButtonsForMissingRoutes, ServiceModelView):
    """Every case the reader may see; the dashboard's numbers link to this list, filtered."""

    datamodel = CrmSQLAInterface(SupportCase)
    class_permission_name = "SupportCase"
    method_permission_name = VIEW_METHOD_ACTIONS
    exclude_route_methods = {"delete", "download", "action", "action_post", "api_read"}
    prepare = staticmethod(services.prepare_case)
    show_template = "crm/support_case_show.html"

    list_title = "Support cases"
    list_columns = ["id", "client", "subject", "priority", "status", "assignee", "sla_due_at"]
    show_columns = [
        "client",
        "channel",
        "subject",
        "description",
        "priority",
        "status",
        "assignee",
        "opened_at",
        "sla_due_at",
        "first_response_at",
        "resolved_at",
        "closed_at",
    ]
    add_columns = ["client", "channel", "subject", "description", "priority"]
    edit_columns = ["subject", "description", "priority"]
    search_columns = [
        "client",
        "status",
        "priority",
        "assignee",
        "channel",
        "opened_at",
        "sla_due_at",
    ]
    order_columns = ["id", "priority", "status", "sla_due_at", "opened_at"]
    base_order = ("sla_due_at", "asc")
    list_relations = ("client",)
    label_columns = {"id": "Case", "sla_due_at": "Due", "opened_at": "Opened"}
    formatters_columns = {
        "status": display_choice,
        "priority": display_choice,
        "channel": display_choice,
        "opened_at": display_timestamp,
        "first_response_at": display_timestamp,
        "resolved_at": display_timestamp,
        "closed_at": display_timestamp,
    }

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        """FAB's detail page plus the conversation, the reply form and the allowed moves."""
        try:
            case = services.get_case(pk)
        except NotFound:
            abort(404)
        self.extra_args = {
            **self.extra_args,
            "case": case,
            "messages": services.conversation(case.id),
            "moves": services.TRANSITIONS[case.status],
            "due_local": _due_column(case),
            "time_left": services.time_left_in_words(case),
            "breached": services.is_breached(case),
            "can_work": self.appbuilder.sm.has_access("can_write", "SupportCase"),
            "assignees": _assignees(case),
        }
        return super().show(pk)


def _assignees(case: SupportCase) -> list[User]:
    """People the case can be given to: active staff whose role works cases, of the client's
    branch (or of every branch). A short list per branch, read in one statement."""
    from flask_appbuilder.security.sqla.models import Role, assoc_user_role
    from sqlalchemy import or_

    from app.org.models import StaffProfile
    from app.security.scoping import UNSCOPED

    working = [r for r in ROLES if allowed(r, "SupportCase", WRITE)]
    everywhere = [r for r in working if ROLES[r].scope == "all"]
    return list(
        db.session.scalars(
            select(User)
            .join(assoc_user_role, assoc_user_role.c.user_id == User.id)
            .join(Role, Role.id == assoc_user_role.c.role_id)
            .outerjoin(StaffProfile, StaffProfile.user_id == User.id)
            .where(
                User.active.is_(True),
                Role.name.in_(working),
                or_(StaffProfile.branch_id == case.client.branch_id, Role.name.in_(everywhere)),
            )
            .distinct()
            .order_by(User.username)
            .limit(200),
            execution_options=UNSCOPED,
        )
    )


class SupportQueueView(BaseView):
    """The desk's queue of cases and the actions that work them."""

    route_base = "/supportqueue"
    class_permission_name = "SupportCase"
    method_permission_name = {
        "queue": READ,
        "take": WRITE,
        "assign": WRITE,
        "move": WRITE,
        "reply": WRITE,
        "transcript": WRITE,
    }
    default_view = "queue"

    @expose("/")
    @has_access
    def queue(self):
        try:
            filters = services.parse_queue_filters(request.args)
        except DomainError as exc:
            record_rejection("support_case", str(exc))
            flash(f"Queue filter not understood: {exc}", "danger")
            return redirect(url_for(f"{self.endpoint}.queue"))
        cases = services.queue_cases(filters)
        rows = [
            {
                "case": case,
                "due": _due_column(case),
                "left": services.time_left_in_words(case),
                "breached": services.is_breached(case),
                "moves": services.TRANSITIONS[case.status],
            }
            for case in cases
        ]
        return self.render_template(
            "crm/support_queue.html",
            title="Support queue",
            rows=rows,
            filters=filters,
            statuses=CASE_STATUSES,
            priorities=PRIORITIES,
            can_work=self.appbuilder.sm.has_access("can_write", "SupportCase"),
            staff=_queue_assignees(),
        )

    def _act(self, pk: int, action, done: str):
        """Run one action in its own transaction; flash the outcome; back where it came from."""
        _, refusal = run_action(action, "support_case")
        if refusal:
            flash(f"Case #{pk}: {refusal}", "danger")
        else:
            flash(done, "success")
        if request.form.get("back") == "case":
            return redirect(url_for("SupportCaseView.show", pk=pk))
        return redirect(url_for(f"{self.endpoint}.queue", **_queue_args()))

    @expose("/take/<int:pk>", methods=["POST"])
    @has_access
    def take(self, pk: int):
        return self._act(pk, lambda: services.take_case(pk), f"Case #{pk} is yours.")

    @expose("/assign/<int:pk>", methods=["POST"])
    @has_access
    def assign(self, pk: int):
        return self._act(
            pk,
            lambda: services.assign_case(pk, request.form.get("assignee_id")),
            f"Case #{pk} assigned.",
        )

    @expose("/move/<int:pk>", methods=["POST"])
    @has_access
    def move(self, pk: int):
        status = request.form.get("status")
        return self._act(
            pk,
            lambda: services.transition_case(pk, status, request.form.get("note")),
            f"Case #{pk} is now {status}.",
        )

    @expose("/reply/<int:pk>", methods=["POST"])
    @has_access
    def reply(self, pk: int):
        return self._act(
            pk,
            lambda: services.reply_to_case(
                pk, request.form.get("body"), request.form.get("then_status") or None
            ),
            f"Reply to case #{pk} queued for sending.",
        )

    @expose("/transcript/<int:pk>", methods=["POST"])
    @has_access
    def transcript(self, pk: int):
        upload = request.files.get("file")
        data = upload.read() if upload is not None else b""
        return self._act(
            pk,
            lambda: transcripts.attach_transcript(
                pk, data, upload.mimetype if upload else None, upload.filename if upload else None
            ),
            f"Chat transcript attached to case #{pk}.",
        )


def _queue_args() -> dict[str, str]:
    """The queue's filters the form came from (kept when going back to it)."""
    keep = ("status", "priority", "assignee", "breached", "sort")
    return {key: request.form[key] for key in keep if request.form.get(key)}


def _queue_assignees() -> list[User]:
    """Whom the queue's filter and assign drop-downs offer: staff the reader can see who work
    cases (a branch's staff for a branch role)."""
    from flask_appbuilder.security.sqla.models import Role, assoc_user_role

    from app.org.models import StaffProfile
    from app.security.scoping import current_actor

    working = [r for r in ROLES if allowed(r, "SupportCase", WRITE)]
    query = (
        select(User)
        .join(assoc_user_role, assoc_user_role.c.user_id == User.id)
        .join(Role, Role.id == assoc_user_role.c.role_id)
        .outerjoin(StaffProfile, StaffProfile.user_id == User.id)
        .where(User.active.is_(True), Role.name.in_(working))
        .distinct()
        .order_by(User.username)
        .limit(200)
    )
    actor = current_actor()
    if actor is not None and not actor.sees_everything:
        query = query.where(StaffProfile.branch_id == actor.branch_id)
    return list(db.session.scalars(query))

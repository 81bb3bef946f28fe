"""The public enquiry form: no login, a CSRF token, a honeypot field, rate limited per address.

A visitor's enquiry becomes a ``web_form`` lead in the branch the form belongs to, assigned to
the branch's agent with the fewest open leads (a manager may reassign it; a branch without
agents leaves it unassigned for its manager). Nothing about existing records is revealed to the
visitor.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.core.audit import record_rejection
from app.core.errors import ConflictError, DomainError
from app.extensions import db
from app.leads.services import create_lead
from app.org.models import Branch
from app.org.services import least_busy_agent
from app.security.scoping import acting_as_system

public_leads = Blueprint("public_leads", __name__, url_prefix="/enquire")


def _page(template: str, status: int = 200, **context):
    """Render inside FAB's layout (outside FAB views its context must be passed in)."""
    builder = current_app.appbuilder
    return render_template(
        template, base_template=builder.base_template, appbuilder=builder, **context
    ), status


class EnquiryForm(FlaskForm):
    first_name = StringField("First name", validators=[DataRequired(), Length(max=100)])
    last_name = StringField("Last name", validators=[DataRequired(), Length(max=100)])
    email = EmailField("E-mail", validators=[Optional(), Length(max=254)])
    phone = StringField("Phone", validators=[Optional(), Length(max=40)])
    company = StringField("Company", validators=[Optional(), Length(max=200)])
    notes = TextAreaField("How can we help?", validators=[Optional(), Length(max=2000)])
    website = StringField("Leave this empty")
    """The honeypot: hidden from people by CSS, filled in by bots."""


def _campaign_of_visit() -> int | None:
    """The campaign of the link the visitor came by (``?utm_campaign=<reference>``); an unknown
    reference is ignored (a visitor cannot fix someone else's link)."""
    from app.leads.services import campaign_for_code

    try:
        return campaign_for_code(request.args.get("utm_campaign"))
    except DomainError:
        return None


@public_leads.route("/<string:branch_code>", methods=["GET", "POST"])
def enquire(branch_code: str):
    with acting_as_system():
        branch = db.session.scalar(select(Branch).where(Branch.code == branch_code.upper()))
    if branch is None:
        abort(404)
    form = EnquiryForm()
    if not form.validate_on_submit():
        return _page("public/enquiry.html", 400 if form.errors else 200, form=form, branch=branch)
    if form.website.data:
        record_rejection("lead", "web form: honeypot filled in (likely a bot)")
        return _page("public/thanks.html", branch=branch)
    try:
        with acting_as_system():
            campaign_id = _campaign_of_visit()
            create_lead(
                campaign_id=campaign_id,
                first_name=form.first_name.data,
                last_name=form.last_name.data,
                email=form.email.data,
                phone=form.phone.data,
                company=form.company.data,
                notes=form.notes.data,
                source="campaign" if campaign_id else "web_form",
                status="new",
                branch_id=branch.id,
                assigned_agent_id=least_busy_agent(branch.id),
            )
            db.session.commit()
    except ConflictError:
        db.session.rollback()
        # We know this person already: thank them without saying what we hold.
        return _page("public/thanks.html", branch=branch)
    except DomainError as exc:
        db.session.rollback()
        target = getattr(form, exc.field, None) if exc.field else None
        (target or form.first_name).errors = [
            *((target or form.first_name).errors or []),
            exc.message,
        ]
        return _page("public/enquiry.html", 400, form=form, branch=branch)
    return _page("public/thanks.html", branch=branch)

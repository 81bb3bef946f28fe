"""Marketing campaigns: segments checked and previewed, sending that respects consent, opt-outs
and preferences and reaches each person once however often it runs, unsubscribe links that
work over HTTP (and forged or expired ones that do not), attribution of leads on the sales
dashboard, branch scoping, and the whole flow on PostgreSQL with a real SMTP server."""

from __future__ import annotations

import itertools
import json
import time
from urllib.parse import urlparse

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from app.audit.models import AuditLog
from app.campaigns import segments as segments_service
from app.campaigns import services
from app.campaigns.models import Campaign, CampaignRecipient, CampaignSegment
from app.campaigns.segments import prepare_segment
from app.campaigns.unsubscribe import SALT
from app.clients.models import Client
from app.clients.services import prepare_client
from app.comms.models import Notification, NotificationPreference
from app.comms.services import dispatch_outbox
from app.extensions import db
from app.leads.conversion import convert_lead
from app.leads.models import Lead
from tests.smtp_server import text_body
from tests.support import api_token, count, login, make_branch, make_lead, make_staff

_n = itertools.count(1)


def make_client(rm, name: str | None = None, consent: bool = True, **fields) -> Client:
    n = next(_n)
    values = {
        "name": name or f"Client Number{n}",
        "email": f"client{n}@test.example",
        "branch_id": rm.branch_id,
        "relationship_manager_id": rm.user_id,
        "investment_capacity": "1m_10m",  # hni
        "marketing_consent": consent,
    }
    values.update(fields)
    client = prepare_client(Client(**values))
    db.session.add(client)
    db.session.flush()
    return client


def make_segment(criteria: dict | None = None, audience: str = "clients", **fields):
    segment = prepare_segment(
        CampaignSegment(
            name=fields.pop("name", f"Segment {next(_n)}"),
            audience=audience,
            criteria=json.dumps(criteria or {}),
            **fields,
        )
    )
    db.session.add(segment)
    db.session.commit()
    return segment


def make_campaign(segment, **fields) -> Campaign:
    values = {
        "name": f"Campaign {next(_n)}",
        "segment_id": segment.id,
        "subject": "News for {first_name}",
        "body": "Dear {first_name}, <b>our</b> new fund is open.",
        "channel": "email",
    }
    values.update(fields)
    campaign = services.prepare_campaign(Campaign(**values))
    db.session.add(campaign)
    db.session.commit()
    return campaign


def send_now(campaign: Campaign, **kwargs) -> dict:
    services.schedule_campaign(campaign)
    db.session.commit()
    return services.run_campaign(campaign.id, **kwargs)


def campaign_rows(campaign: Campaign) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification)
            .where(Notification.kind == "campaign", Notification.related_id == str(campaign.id))
            .order_by(Notification.id)
        )
    )


def reasons(campaign: Campaign) -> dict:
    return {
        (r.client_id or r.lead_id): (r.status, r.reason)
        for r in db.session.scalars(
            select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id)
        )
    }


def auth(client, staff) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(client, staff.user.username)}"}


@pytest.fixture
def team(app):
    home, other = make_branch(), make_branch()
    people = {
        "manager": make_staff("Manager", home),
        "agent": make_staff("Agent", home),
        "other_manager": make_staff("Manager", other),
        "compliance": make_staff("Compliance", home),
        "admin": make_staff("Admin", home),
    }
    db.session.commit()
    return people


# ---- segments -------------------------------------------------------------------------------


def test_segment_criteria_are_checked_and_a_refusal_names_the_criterion(app, team):
    client = app.test_client()
    headers = auth(client, team["manager"])
    audits_before = count(AuditLog)
    cases = [
        ({"colour": ["blue"]}, "criteria.colour", "unknown criterion 'colour'"),
        ({"segment": ["platinum"]}, "criteria.segment", "'platinum' is not one of"),
        ({"marketing_consent": "yes"}, "criteria.marketing_consent", "true or false"),
        ({"kyc_status": []}, "criteria.kyc_status", "at least one"),
    ]
    for criteria, field, words in cases:
        response = client.post(
            "/api/v1/campaignsegment/",
            json={"name": "Bad", "audience": "clients", "criteria": json.dumps(criteria)},
            headers=headers,
        )
        assert response.status_code == 422, response.json
        assert words in response.json["message"][field][0]
    # a lead criterion on a client segment is unknown too
    response = client.post(
        "/api/v1/campaignsegment/",
        json={"name": "Bad", "audience": "clients", "criteria": '{"source": ["import"]}'},
        headers=headers,
    )
    assert "criteria.source" in response.json["message"]
    assert count(CampaignSegment) == 0
    assert count(AuditLog) > audits_before  # the refusals are on record
    rejected = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "rejected").order_by(AuditLog.id.desc())
    ).first()
    assert "criteria" in (rejected.detail or "").lower()


def test_preview_counts_the_segment_in_sql_and_links_to_its_rows(app, team):
    rm = team["manager"]
    wanted = [make_client(rm, kyc_status="verified") for _ in range(3)]
    make_client(rm, kyc_status="pending")
    make_client(rm, investment_capacity="under_100k", kyc_status="verified")  # retail
    make_client(team["other_manager"], kyc_status="verified")  # another branch
    db.session.commit()
    client = app.test_client()
    headers = auth(client, rm)
    response = client.post(
        "/api/v1/campaignsegment/",
        json={
            "name": "Verified HNI",
            "audience": "clients",
            "criteria": json.dumps({"segment": ["hni"], "kyc_status": ["verified"]}),
        },
        headers=headers,
    )
    assert response.status_code == 201, response.json
    segment_id = response.json["id"]
    preview = client.get(f"/api/v1/campaignsegment/{segment_id}/preview", headers=headers).json
    assert (preview["count"], preview["at_least"], preview["text"]) == (3, False, "3 clients")
    # the link opens the client list showing exactly those rows
    browser = app.test_client()
    assert login(browser, rm.user.username).status_code == 302
    page = browser.get(preview["list_url"]).get_data(as_text=True)
    assert "Record Count:</strong> 3" in page
    for person in wanted:
        assert person.name in page
    shown = browser.get(f"/campaignsegmentview/show/{segment_id}").get_data(as_text=True)
    assert "3 clients" in shown


def test_preview_is_capped_on_a_large_segment(app, team, monkeypatch):
    monkeypatch.setattr("app.campaigns.segments.LIST_COUNT_CAP", 2)
    for _ in range(4):
        make_client(team["manager"])
    db.session.commit()
    segment = make_segment({"segment": ["hni"]})
    assert segments_service.preview_count(segment) == (2, True)
    assert segments_service.describe_count(segment) == "2+ clients"


# ---- sending --------------------------------------------------------------------------------


def test_send_respects_consent_opt_outs_preferences_and_addresses(app, team):
    rm = team["manager"]
    ok = make_client(rm, "Asha Verma")
    no_consent = make_client(rm, "No Consent", consent=False)
    opted_out = make_client(rm, "Opted Out", consent=False)
    opted_out.marketing_opt_out_at = services.utcnow()
    email_off = make_client(rm, "Email Off")
    db.session.add(NotificationPreference(client_id=email_off.id, email_enabled=False))
    no_email = make_client(rm, "No Email", email=None, phone="+919812345678")
    db.session.commit()
    campaign = make_campaign(make_segment({"segment": ["hni"]}))

    result = send_now(campaign)

    assert result == {"status": "sent", "sent": 1, "skipped": 4}
    (row,) = campaign_rows(campaign)
    assert (row.address, row.recipient_client_id) == (ok.email, ok.id)
    assert row.subject == "News for Asha"
    assert row.body == "Dear Asha, <b>our</b> new fund is open."  # escaped when rendered
    assert row.unsubscribe_url.startswith("http") and "/unsubscribe/" in row.unsubscribe_url
    assert reasons(campaign) == {
        ok.id: ("sent", None),
        no_consent.id: ("skipped", "no_consent"),
        opted_out.id: ("skipped", "opted_out"),
        email_off.id: ("skipped", "preferences"),
        no_email.id: ("skipped", "no_address"),
    }
    # the e-mail escapes the body's markup and carries the unsubscribe headers
    from app.comms.channels import EmailChannel

    with app.test_request_context():
        message = EmailChannel().build(row)
    html = message.get_body(("html",)).get_content()
    assert "&lt;b&gt;our&lt;/b&gt;" in html and "<b>our</b>" not in html
    assert message["List-Unsubscribe"] == f"<{row.unsubscribe_url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_an_sms_campaign_needs_sms_allowed_and_carries_its_opt_out_link(app, team):
    rm = team["manager"]
    allowed = make_client(rm, phone="+919811111111")
    db.session.add(NotificationPreference(client_id=allowed.id, sms_enabled=True))
    default = make_client(rm, phone="+919822222222")  # no preference row: SMS is off
    db.session.commit()
    campaign = make_campaign(make_segment({"segment": ["hni"]}), channel="sms")
    send_now(campaign)
    (row,) = campaign_rows(campaign)
    assert (row.channel, row.address) == ("sms", "+919811111111")
    assert "Stop: http" in row.body
    assert reasons(campaign)[default.id] == ("skipped", "preferences")


def test_each_person_once_across_batches_reruns_and_a_crash(app, team):
    app.config["CRM_CAMPAIGN_BATCH"] = 2
    try:
        people = [make_client(team["manager"]) for _ in range(5)]
        db.session.commit()
        campaign = make_campaign(make_segment({"segment": ["hni"]}))
        services.schedule_campaign(campaign)
        db.session.commit()
        # the worker dies after its first batch: the campaign stays "sending"
        assert services.run_campaign(campaign.id, max_batches=1)["status"] == "sending"
        assert len(campaign_rows(campaign)) == 2
        # the sweep resumes it, and only the others are sent
        from app.campaigns.jobs import send_due_campaigns

        assert send_due_campaigns()[campaign.id] == {"status": "sent", "sent": 5, "skipped": 0}
        # a stray re-run (a retried job) and a forced second pass send nothing more
        services.run_campaign(campaign.id)
        db.session.execute(
            Campaign.__table__.update()
            .where(Campaign.__table__.c.id == campaign.id)
            .values(status="sending")
        )
        db.session.commit()
        assert services.run_campaign(campaign.id)["sent"] == 5
        rows = campaign_rows(campaign)
        assert sorted(r.recipient_client_id for r in rows) == sorted(p.id for p in people)
        assert count(CampaignRecipient) == 5
    finally:
        app.config["CRM_CAMPAIGN_BATCH"] = 500


def test_workflow_refusals_and_cancel(app, team):
    make_client(team["manager"])
    db.session.commit()
    campaign = make_campaign(make_segment())
    client = app.test_client()
    headers = auth(client, team["manager"])
    future = "2030-01-01T09:00:00Z"
    response = client.post(
        f"/api/v1/campaign/{campaign.id}/schedule", json={"scheduled_at": future}, headers=headers
    )
    assert response.json == {"status": "scheduled", "scheduled_at": "2030-01-01T09:00:00+00:00"}
    again = client.post(f"/api/v1/campaign/{campaign.id}/schedule", json={}, headers=headers)
    assert again.status_code == 409 and "only a draft" in again.json["message"]
    edit = client.put(f"/api/v1/campaign/{campaign.id}", json={"name": "New"}, headers=headers)
    assert edit.status_code == 409
    assert client.post(f"/api/v1/campaign/{campaign.id}/cancel", headers=headers).json == {
        "status": "cancelled"
    }
    assert services.run_campaign(campaign.id)["status"] == "cancelled"
    assert campaign_rows(campaign) == []
    stats = client.get(f"/api/v1/campaign/{campaign.id}/stats", headers=headers).json
    assert (stats["status"], stats["sent"], stats["skipped"]) == ("cancelled", 0, 0)
    bad = client.post(
        "/api/v1/campaign/",
        json={
            "name": "X",
            "code": "x-1",
            "segment_id": 999999,
            "subject": "s",
            "body": "{unknown}",
        },
        headers=headers,
    )
    assert bad.status_code == 422 and "segment" in bad.json["message"]


# ---- unsubscribe ----------------------------------------------------------------------------


def test_unsubscribe_link_over_http_then_the_next_campaign_skips_them(app, team):
    rm = team["manager"]
    person = make_client(rm, "Ravi Kumar")
    other = make_client(rm)
    db.session.commit()
    segment = make_segment({"segment": ["hni"]})
    first = make_campaign(segment)
    send_now(first)
    row = next(r for r in campaign_rows(first) if r.recipient_client_id == person.id)
    path = urlparse(row.unsubscribe_url).path
    visitor = app.test_client()  # nobody signed in

    page = visitor.get(path)
    assert page.status_code == 200
    masked = f"{person.email[0]}***@test.example"
    assert f"Stop marketing messages to {masked}?" in page.get_data(as_text=True)
    assert person.email not in page.get_data(as_text=True)  # a forwarded link shows no address
    db.session.expire_all()
    assert db.session.get(Client, person.id).marketing_consent is True  # GET changes nothing

    done = visitor.post(path, data={"confirm": "yes"})
    assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)
    db.session.expire_all()
    saved = db.session.get(Client, person.id)
    assert saved.marketing_consent is False and saved.marketing_opt_out_at is not None
    audit = db.session.scalars(
        select(AuditLog)
        .where(AuditLog.record_type == "client", AuditLog.record_id == str(person.id))
        .order_by(AuditLog.id.desc())
    ).first()
    assert "unsubscribed from marketing (confirm page)" in audit.detail
    assert first.code in audit.detail

    second = make_campaign(segment)
    send_now(second)
    assert [r.recipient_client_id for r in campaign_rows(second)] == [other.id]
    assert reasons(second)[person.id] == ("skipped", "opted_out")


def test_one_click_unsubscribe_from_a_lead_campaign(app, team):
    lead = make_lead(team["agent"], marketing_consent=True)
    db.session.commit()
    campaign = make_campaign(make_segment({"marketing_consent": True}, audience="leads"))
    send_now(campaign)
    (row,) = campaign_rows(campaign)
    assert row.address == lead.email and row.recipient_client_id is None
    response = app.test_client().post(
        urlparse(row.unsubscribe_url).path, data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).marketing_consent is False


def test_forged_changed_and_expired_links_are_refused_and_write_nothing(app, team):
    person = make_client(team["manager"])
    db.session.commit()
    campaign = make_campaign(make_segment())
    send_now(campaign)
    (row,) = campaign_rows(campaign)
    token = urlparse(row.unsubscribe_url).path.rsplit("/", 1)[1]
    visitor = app.test_client()
    forged = URLSafeTimedSerializer("not-our-key-0123456789abcdef0123456789", salt=SALT).dumps(
        [campaign.id, "client", person.id]
    )

    class OldSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 400 * 86400

    old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT, signer=OldSigner).dumps(
        [campaign.id, "client", person.id]
    )
    for bad, status in ((forged, 400), (token[:-3] + "abc", 400), ("nonsense", 400), (old, 410)):
        for method in ("get", "post"):
            response = getattr(visitor, method)(f"/unsubscribe/{bad}")
            assert response.status_code == status, (bad, method)
            assert "link" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Client, person.id).marketing_consent is True
    assert (
        db.session.scalars(
            select(AuditLog).where(AuditLog.action == "rejected").order_by(AuditLog.id.desc())
        )
        .first()
        .detail.startswith("unsubscribe link")
    )


# ---- attribution ----------------------------------------------------------------------------


def test_leads_from_a_campaign_and_their_conversions_on_the_sales_dashboard(app, team):
    from tests.test_dashboards import open_dashboard, record_count

    campaign = make_campaign(make_segment(), name="Diwali Funds", code="diwali-26")
    client = app.test_client()
    headers = auth(client, team["agent"])
    ids = []
    for n in range(3):
        response = client.post(
            "/api/v1/lead/",
            json={
                "first_name": "Camp",
                "last_name": f"Lead{n}",
                "email": f"camp{n}@test.example",
                "campaign_id": campaign.id,
            },
            headers=headers,
        )
        assert response.status_code == 201, response.json
        ids.append(response.json["id"])
    unknown = client.post(
        "/api/v1/lead/",
        json={
            "first_name": "A",
            "last_name": "B",
            "email": "ab@test.example",
            "campaign_id": 99999,
        },
        headers=headers,
    )
    assert unknown.status_code == 422 and "campaign_id" in unknown.json["message"]
    # a visitor of the public form who came by the campaign's link
    branch_code = team["manager"].branch.code
    visitor = app.test_client()
    form = visitor.get(f"/enquire/{branch_code}?utm_campaign=diwali-26").get_data(as_text=True)
    import re

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    csrf = token.group(1) if token else ""  # CSRF may be off in the test settings
    posted = visitor.post(
        f"/enquire/{branch_code}?utm_campaign=diwali-26",
        data={
            "csrf_token": csrf,
            "first_name": "Web",
            "last_name": "Visitor",
            "email": "web.visitor@test.example",
        },
    )
    assert posted.status_code == 200
    web_lead = db.session.scalar(select(Lead).where(Lead.email == "web.visitor@test.example"))
    assert (web_lead.campaign_id, web_lead.source) == (campaign.id, "campaign")
    # one of them is converted
    lead = db.session.get(Lead, ids[0])
    lead.status = "qualified"
    db.session.commit()
    convert_lead(ids[0])
    db.session.commit()

    browser = app.test_client()
    assert login(browser, team["manager"].user.username).status_code == 302
    chart = open_dashboard(browser, "sales")["leads-by-campaign"]
    count_shown, _, url = chart["Diwali Funds"]
    assert count_shown == 4
    assert record_count(browser, url) == 4
    stats = services.campaign_stats(db.session.get(Campaign, campaign.id))
    assert (stats["leads"], stats["converted"]) == (4, 1)
    page = browser.get("/dashboards/sales/").get_data(as_text=True)
    assert "Leads and conversions by campaign" in page


# ---- roles and scoping ----------------------------------------------------------------------


def test_a_branch_manager_sees_and_sends_only_within_their_branch(app, team):
    mine = make_client(team["manager"])
    theirs = make_client(team["other_manager"])
    db.session.commit()
    client = app.test_client()
    headers = auth(client, team["manager"])
    other_branch = team["other_manager"].branch_id
    refused = client.post(
        "/api/v1/campaignsegment/",
        json={"name": "Theirs", "criteria": json.dumps({"branch": other_branch})},
        headers=headers,
    )
    assert refused.status_code == 422 and "criteria.branch" in refused.json["message"]
    created = client.post(
        "/api/v1/campaignsegment/", json={"name": "All mine", "criteria": "{}"}, headers=headers
    )
    assert created.status_code == 201, created.json
    segment_id = created.json["id"]
    assert (
        client.get(f"/api/v1/campaignsegment/{segment_id}/preview", headers=headers).json["count"]
        == 1
    )
    made = client.post(
        "/api/v1/campaign/",
        json={
            "name": "Mine",
            "code": "mine",
            "segment_id": segment_id,
            "subject": "Hi",
            "body": "Hello {name}",
        },
        headers=headers,
    )
    assert made.status_code == 201, made.json
    sent = client.post(f"/api/v1/campaign/{made.json['id']}/schedule", json={}, headers=headers)
    assert sent.status_code == 200
    campaign = db.session.get(Campaign, made.json["id"])
    assert [r.recipient_client_id for r in campaign_rows(campaign)] == [mine.id]
    assert theirs.id not in reasons(campaign)
    # the other branch's manager does not see the campaign or its segment
    stranger = auth(client, team["other_manager"])
    assert client.get(f"/api/v1/campaign/{campaign.id}", headers=stranger).status_code == 404
    assert (
        client.get(f"/api/v1/campaignsegment/{segment_id}/preview", headers=stranger).status_code
        == 404
    )
    # sales staff read; they cannot send; other desks see nothing
    agent = auth(client, team["agent"])
    assert client.get(f"/api/v1/campaign/{campaign.id}/stats", headers=agent).status_code == 200
    assert client.post(f"/api/v1/campaign/{campaign.id}/cancel", headers=agent).status_code == 403
    compliance = auth(client, team["compliance"])
    assert client.get("/api/v1/campaign/", headers=compliance).status_code == 403


# ---- PostgreSQL with a real SMTP server -----------------------------------------------------


def test_on_postgresql_the_campaign_is_mailed_once_and_the_mail_unsubscribes(
    pg_app, pg_client, mailbox
):
    manager = make_staff("Manager", make_branch())
    db.session.commit()
    people = [make_client(manager) for _ in range(3)]
    make_client(manager, consent=False)
    db.session.commit()
    pg_app.config["CRM_CAMPAIGN_BATCH"] = 2
    try:
        segment = make_segment({"segment": ["hni"]})
        campaign = make_campaign(segment)
        assert send_now(campaign) == {"status": "sent", "sent": 3, "skipped": 1}
        assert services.run_campaign(campaign.id)["sent"] == 3  # a re-run adds nothing
    finally:
        pg_app.config["CRM_CAMPAIGN_BATCH"] = 500
    dispatch_outbox()
    assert mailbox.wait_for(3)
    assert sorted(m["To"] for m in mailbox.messages) == sorted(p.email for p in people)
    dispatch_outbox()
    assert len(mailbox.messages) == 3
    message = mailbox.to(people[0].email)[0]
    header = message["List-Unsubscribe"].strip("<>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert header in text_body(message)
    # the mail client's one-click unsubscribe
    response = pg_client.post(urlparse(header).path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    second = make_campaign(segment)
    assert send_now(second)["sent"] == 2
    dispatch_outbox()
    assert mailbox.wait_for(5)
    assert len(mailbox.to(people[0].email)) == 1

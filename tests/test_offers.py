"""Offers: who an offer reaches (segment, activity, occasion window, preferences), that each
client hears once however often or concurrently the job runs, and refusals of bad offers."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.clients.models import Client
from app.clients.services import prepare_client
from app.comms.models import Notification, NotificationPreference
from app.extensions import db
from app.leads.models import Interaction
from app.offers import services
from app.offers.jobs import send_offers
from app.offers.models import Offer, OfferDelivery
from tests.support import api_token, count, login, make_branch, make_staff

TODAY = date(2026, 11, 21)
CAPACITY = {"retail": "under_100k", "affluent": "100k_1m", "hni": "1m_10m", "uhni": "over_10m"}
_n = itertools.count(1)


def make_client(rm, name: str | None = None, segment: str = "retail", **fields) -> Client:
    n = next(_n)
    values = {
        "name": name or f"Client Number{n}",
        "email": f"client{n}@test.example",
        "branch_id": rm.branch_id,
        "relationship_manager_id": rm.user_id,
        "investment_capacity": CAPACITY[segment],
    }
    values.update(fields)
    client = prepare_client(Client(**values))
    db.session.add(client)
    db.session.flush()
    return client


def make_offer(**fields) -> Offer:
    values = {
        "name": f"Offer {next(_n)}",
        "subject": "An offer for {first_name}",
        "body": "Dear {first_name}, a festive rate awaits you.",
        "channel": "email",
    }
    values.update(fields)
    offer = services.prepare_offer(Offer(**values))
    db.session.add(offer)
    db.session.commit()
    return offer


def offer_rows(offer: Offer) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification)
            .where(Notification.kind == "offer", Notification.related_id == str(offer.id))
            .order_by(Notification.recipient_client_id)
        )
    )


def recipients(offer: Offer) -> set[int]:
    return {row.recipient_client_id for row in offer_rows(offer)}


def interaction(client: Client, author, days_ago: int) -> None:
    db.session.add(
        Interaction(
            kind="call",
            client_id=client.id,
            author_id=author.user_id,
            occurred_at=datetime.combine(TODAY, datetime.min.time(), UTC)
            - timedelta(days=days_ago)
            + timedelta(hours=12),
        )
    )
    db.session.flush()


@pytest.fixture
def rm(app):
    staff = make_staff("Manager", make_branch())
    db.session.commit()
    return staff


def auth(client, staff) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(client, staff.user.username)}"}


# ---- who receives an offer ----------------------------------------------------------------


def test_segment_filter_and_rendered_body_in_the_outbox(app, rm):
    retail = make_client(rm, "Ravi Kumar", "retail")
    affluent = make_client(rm, "Asha Verma", "affluent")
    hni = make_client(rm, "Meera Iyer", "hni")
    offer = make_offer(segments="hni, affluent")
    assert offer.segments == "affluent,hni"

    assert send_offers(TODAY) == {offer.name: 2}

    rows = offer_rows(offer)
    assert {row.recipient_client_id for row in rows} == {affluent.id, hni.id}
    assert retail.id not in recipients(offer)
    by_client = {row.recipient_client_id: row for row in rows}
    assert by_client[affluent.id].body == "Dear Asha, a festive rate awaits you."
    assert by_client[hni.id].subject == "An offer for Meera"
    assert by_client[hni.id].address == hni.email
    assert by_client[hni.id].status == "pending"
    deliveries = db.session.scalars(select(OfferDelivery).order_by(OfferDelivery.client_id)).all()
    assert [(d.client_id, d.notification_id) for d in deliveries] == [
        (affluent.id, by_client[affluent.id].id),
        (hni.id, by_client[hni.id].id),
    ]


def test_active_and_inactive_clients_by_their_interactions(app, rm):
    recent = make_client(rm, "Recent Caller")
    old = make_client(rm, "Old Caller")
    never = make_client(rm, "Never Called")
    interaction(recent, rm, days_ago=10)
    interaction(old, rm, days_ago=200)
    active = make_offer(activity="active", activity_days=30)
    inactive = make_offer(activity="inactive", activity_days=90)

    send_offers(TODAY)

    assert recipients(active) == {recent.id}
    assert recipients(inactive) == {old.id, never.id}


@pytest.mark.parametrize(
    ("offset", "sent"), [(-3, False), (-2, True), (-1, True), (0, True), (1, False)]
)
def test_occasion_offer_goes_out_from_lead_days_before_until_the_day(app, rm, offset, sent):
    app.config["CRM_FESTIVALS"] = {**app.config["CRM_FESTIVALS"], "Test Festival": "2026-12-10"}
    try:
        client = make_client(rm)
        offer = make_offer(occasion="Test Festival", lead_days=2)
        send_offers(date(2026, 12, 10) + timedelta(days=offset))
        assert recipients(offer) == ({client.id} if sent else set())
    finally:
        app.config["CRM_FESTIVALS"].pop("Test Festival")


def test_window_and_switched_off_offers_send_nothing(app, rm):
    make_client(rm)
    later = make_offer(starts_on=TODAY + timedelta(days=1))
    over = make_offer(starts_on=TODAY - timedelta(days=9), ends_on=TODAY - timedelta(days=1))
    off = make_offer(active=False)
    assert send_offers(TODAY) == {}
    assert not recipients(later) and not recipients(over) and not recipients(off)


def test_each_client_once_when_the_job_runs_twice(app, rm):
    clients = [make_client(rm) for _ in range(3)]
    offer = make_offer()
    assert send_offers(TODAY) == {offer.name: 3}
    assert send_offers(TODAY) == {offer.name: 0}
    assert send_offers(TODAY + timedelta(days=1)) == {offer.name: 0}
    assert recipients(offer) == {c.id for c in clients}
    assert count(Notification) == 3 and count(OfferDelivery) == 3
    # a client who joins later gets it on the next run, the others still once
    late = make_client(rm)
    db.session.commit()
    assert send_offers(TODAY) == {offer.name: 1}
    assert recipients(offer) == {c.id for c in clients} | {late.id}


def test_large_audiences_go_out_in_bounded_batches(app, rm):
    app.config["CRM_OFFER_BATCH"] = 2
    try:
        for _ in range(5):
            make_client(rm)
        offer = make_offer()
        assert services.send_offer(offer, TODAY) == 2  # one batch: at most the batch size
        db.session.commit()
        assert send_offers(TODAY) == {offer.name: 3}  # the rest, batch by batch
        assert count(OfferDelivery) == 5
    finally:
        app.config["CRM_OFFER_BATCH"] = 1000


def test_suspended_inactive_and_opted_out_clients_receive_nothing(app, rm):
    ok = make_client(rm, "Fine Client")
    make_client(rm, "Suspended Client", status="suspended")
    make_client(rm, "Dormant Client", status="inactive")
    make_client(rm, "No Email", email=None)
    opted_out = make_client(rm, "Opted Out")
    db.session.add(
        NotificationPreference(client_id=opted_out.id, email_enabled=False, in_app_enabled=False)
    )
    sms_ok = make_client(rm, "Sms Yes", phone="+91 98765 43210")
    db.session.add(NotificationPreference(client_id=sms_ok.id, sms_enabled=True))
    sms_off = make_client(rm, "Sms Default Off", phone="+91 98765 43211")
    email_offer = make_offer()
    sms_offer = make_offer(channel="sms", body="Hi {name}, reply YES for the offer.")

    send_offers(TODAY)

    assert recipients(email_offer) == {ok.id, sms_ok.id, sms_off.id}
    assert recipients(sms_offer) == {sms_ok.id}
    (sms,) = offer_rows(sms_offer)
    assert (sms.channel, sms.address, sms.body) == (
        "sms",
        "+919876543210",
        "Hi Sms Yes, reply YES for the offer.",
    )


def test_audience_preview_is_a_capped_count(app, rm, monkeypatch):
    for _ in range(4):
        make_client(rm, segment="hni")
    make_client(rm, segment="retail")
    offer = make_offer(segments="hni")
    assert services.describe_audience(offer, TODAY) == "4 clients"
    monkeypatch.setattr(services, "AUDIENCE_PREVIEW_CAP", 3)
    assert services.preview_audience(offer, TODAY) == (3, True)
    assert services.describe_audience(offer, TODAY) == "at least 3 clients"


def test_a_clients_name_is_pasted_not_formatted(app, rm):
    client = make_client(rm, "{name.__class__} Sneaky")
    offer = make_offer(body="Hello {name}!")
    send_offers(TODAY)
    (row,) = offer_rows(offer)
    assert row.recipient_client_id == client.id
    assert row.body == "Hello {name.__class__} Sneaky!"


# ---- two runs at once (PostgreSQL) ---------------------------------------------------------


def test_two_runs_at_once_still_send_each_client_once(pg_app):
    rm = make_staff("Manager", make_branch())
    clients = [make_client(rm) for _ in range(40)]
    offer = make_offer()
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        with pg_app.app_context():
            try:
                barrier.wait()
                results.append(send_offers(TODAY))
            except Exception as exc:  # noqa: BLE001  (the test reports any escape)
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert sorted(r[offer.name] for r in results)[1] <= 40
    assert sum(r[offer.name] for r in results) == 40
    assert count(OfferDelivery) == 40
    assert count(Notification) == 40
    assert recipients(offer) == {c.id for c in clients}


# ---- refusals and roles through the API ----------------------------------------------------

GOOD = {
    "name": "Diwali gold",
    "subject": "Happy Diwali, {first_name}",
    "body": "Dear {first_name}, enjoy our Diwali rate.",
    "channel": "email",
    "segments": "affluent,hni",
    "activity": "any",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occasion": "Made-up Day"}, "occasion"),
        ({"segments": "affluent,platinum"}, "segments"),
        ({"body": "Dear {first_name}, your {balance} is ready."}, "body"),
        ({"subject": "Hi {name.__class__}"}, "subject"),
        ({"activity": "inactive", "activity_days": -5}, "activity_days"),
        ({"starts_on": "2026-12-10", "ends_on": "2026-12-01"}, "ends_on"),
        ({"channel": "in_app"}, "channel"),
    ],
)
def test_bad_offers_are_refused_naming_the_field(app, client, rm, change, field):
    response = client.post("/api/v1/offer/", json={**GOOD, **change}, headers=auth(client, rm))
    assert response.status_code == 422, response.json
    assert field in response.json["message"], response.json
    assert count(Offer) == 0


def test_unknown_occasion_lists_the_known_ones(app, client, rm):
    response = client.post(
        "/api/v1/offer/", json={**GOOD, "occasion": "Made-up Day"}, headers=auth(client, rm)
    )
    message = response.json["message"]["occasion"][0]
    assert "Diwali 2026" in message and "Christmas 2026" in message


def test_manager_creates_and_runs_an_offer_agent_only_reads(app, client, rm):
    target = make_client(rm, "Asha Verma", "hni")
    make_client(rm, "Ravi Kumar", "retail")
    agent = make_staff("Agent", make_branch())
    db.session.commit()

    refused = client.post("/api/v1/offer/", json=GOOD, headers=auth(client, agent))
    assert refused.status_code == 403
    assert count(Offer) == 0

    created = client.post("/api/v1/offer/", json=GOOD, headers=auth(client, rm))
    assert created.status_code == 201, created.json
    offer_id = created.json["id"]
    offer = db.session.get(Offer, offer_id)
    assert offer.created_by_id == rm.user_id

    assert client.get("/api/v1/offer/", headers=auth(client, agent)).status_code == 200
    assert (
        client.post(f"/api/v1/offer/{offer_id}/run", headers=auth(client, agent)).status_code == 403
    )
    audience = client.get(f"/api/v1/offer/{offer_id}/audience", headers=auth(client, rm))
    assert audience.json["count"] == 1

    run = client.post(f"/api/v1/offer/{offer_id}/run", headers=auth(client, rm))
    assert run.status_code == 200 and run.json == {"sent": 1}
    again = client.post(f"/api/v1/offer/{offer_id}/run", headers=auth(client, rm))
    assert again.json == {"sent": 0}
    assert recipients(offer) == {target.id}
    runs = db.session.scalars(
        select(AuditLog.detail)
        .where(AuditLog.record_type == "offer", AuditLog.record_id == str(offer_id))
        .where(AuditLog.actor_id == rm.user_id, AuditLog.detail.like("sent now%"))
        .order_by(AuditLog.id)
    ).all()
    assert runs == ["sent now to 1 client(s)", "sent now to 0 client(s)"]


def test_running_an_offer_outside_its_window_is_refused(app, client, rm):
    make_client(rm)
    offer = make_offer(starts_on=date.today() + timedelta(days=5))
    response = client.post(f"/api/v1/offer/{offer.id}/run", headers=auth(client, rm))
    assert response.status_code == 422
    assert "not due today" in response.json["message"]["starts_on"][0]
    assert count(OfferDelivery) == 0


# ---- screens --------------------------------------------------------------------------------


def test_manager_adds_an_offer_on_the_screen_and_sees_its_audience(app, client, rm):
    make_client(rm, "Asha Verma", "affluent")
    db.session.commit()
    login(client, rm.user.username)
    response = client.post(
        "/offerview/add",
        data={
            "name": "We miss you",
            "channel": "email",
            "subject": "We miss you, {first_name}",
            "body": "Dear {first_name}, come back for a free review.",
            "segments": ["affluent"],
            "activity": "inactive",
            "activity_days": "90",
            "occasion": "",
            "lead_days": "0",
            "active": "y",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    offer = db.session.scalar(select(Offer).where(Offer.name == "We miss you"))
    assert offer is not None and offer.segments == "affluent" and offer.activity_days == 90
    page = client.get(f"/offerview/show/{offer.id}").get_data(as_text=True)
    assert "1 client" in page and "run-offer" in page

    sent = client.post(f"/offerview/run/{offer.id}", follow_redirects=True)
    assert "Offer sent to 1 client." in sent.get_data(as_text=True)
    deliveries = client.get(f"/offerview/show/{offer.id}").get_data(as_text=True)
    assert "Asha Verma" in deliveries


def test_screen_refuses_an_unknown_placeholder_and_writes_nothing(app, client, rm):
    login(client, rm.user.username)
    response = client.post(
        "/offerview/add",
        data={
            "name": "Broken",
            "channel": "email",
            "subject": "Hello",
            "body": "Dear {customer}",
            "activity": "any",
            "lead_days": "0",
        },
        follow_redirects=True,
    )
    assert "unknown placeholder {customer}" in response.get_data(as_text=True)
    assert count(Offer) == 0

    # an offer saved switched off (the box left unticked) is kept, and sends nothing
    client.post(
        "/offerview/add",
        data={
            "name": "Draft",
            "channel": "email",
            "subject": "Hello",
            "body": "Dear {name}",
            "activity": "any",
        },
    )
    draft = db.session.scalar(select(Offer).where(Offer.name == "Draft"))
    assert draft is not None and draft.active is False and draft.lead_days == 0


def test_an_offer_that_was_sent_cannot_be_deleted(app, client):
    admin = make_staff("Admin", make_branch())
    make_client(admin)
    sent, unsent = make_offer(), make_offer(starts_on=TODAY + timedelta(days=30))
    send_offers(TODAY)
    headers = auth(client, admin)
    refused = client.delete(f"/api/v1/offer/{sent.id}", headers=headers)
    assert refused.status_code == 409
    assert "switch it off" in refused.json["message"]
    assert db.session.get(Offer, sent.id) is not None and count(OfferDelivery) == 1
    assert client.delete(f"/api/v1/offer/{unsent.id}", headers=headers).status_code == 200


def test_sent_offers_show_on_the_timeline_and_deliveries_follow_client_scope(app, client, rm):
    from app.clients.timeline import client_timeline

    agent = make_staff("Agent", make_branch())
    other_agent = make_staff("Agent", make_branch())
    mine = make_client(agent, "Asha Verma")
    theirs = make_client(other_agent, "Ravi Kumar")
    make_offer(name="Festive rate", subject="A festive rate for {first_name}")
    send_offers(TODAY)

    _, events = client_timeline(mine.id, {"message"}, None, 10)
    assert [event.title for event in events] == ["email to the client: A festive rate for Asha"]

    login(client, agent.user.username)
    page = client.get("/offerdeliveryview/list/").get_data(as_text=True)
    assert mine.name in page and theirs.name not in page
    assert client.get("/offerview/list/").status_code == 200
    assert client.get("/offerview/add").status_code in (302, 403)  # agents only read offers


def test_two_offers_cannot_share_a_name(app, client, rm):
    make_offer(name="Diwali gold")
    response = client.post("/api/v1/offer/", json=GOOD, headers=auth(client, rm))
    assert response.status_code == 409
    assert response.json["message"] == {"name": ["another offer already has this name."]}
    assert count(Offer) == 1

"""The billing desk's daily jobs: invoices past due become overdue once and their client is
reminded once however often the job runs; stale quotations expire; contract renewal reminders
at 60 and 30 days go once each."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from app.billing import jobs, services
from app.billing.models import Contract
from app.comms.models import Notification
from app.core.schedule import BY_NAME
from app.extensions import db
from tests.billing_support import TODAY, issued_invoice, make_client, two_lines
from tests.support import make_branch, make_staff

DUE = date(2026, 4, 1)


def _sent(kind: str) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.kind == kind)))


def test_overdue_is_set_once_and_the_client_reminded_once(app):
    agent = make_staff("Agent", make_branch(tz="UTC"))
    client = make_client(agent)
    client.email = "asha@example.test"
    late = issued_invoice(client, due=DUE)
    paid = issued_invoice(client, due=DUE)
    services.record_payment(paid.id, {"amount": str(paid.total)}, today=TODAY)
    not_yet = issued_invoice(client, due=DUE + timedelta(days=10))
    db.session.commit()

    assert jobs.mark_overdue(DUE)["overdue"] == 0  # due today is not late yet
    first = jobs.mark_overdue(DUE + timedelta(days=1))
    assert first["overdue"] == 1
    db.session.expire_all()
    assert (late.status, paid.status, not_yet.status) == ("overdue", "paid", "issued")
    to_client = _sent("invoice_overdue")
    assert [n.recipient_client_id for n in to_client] == [client.id]
    assert late.number in to_client[0].subject and "1,195.82" in to_client[0].body
    assert [n.recipient_user_id for n in _sent("invoice_overdue_rm") if n.channel == "in_app"] == [
        agent.user_id
    ]

    again = jobs.mark_overdue(DUE + timedelta(days=2))
    assert again == {"overdue": 0, "quotations_expired": 0, "reminders": 0}
    assert len(_sent("invoice_overdue")) == 1


def test_a_part_payment_on_an_overdue_invoice_does_not_remind_again(app):
    client = make_client()
    client.email = "asha@example.test"
    invoice = issued_invoice(client, due=DUE)
    jobs.mark_overdue(DUE + timedelta(days=1))
    services.record_payment(invoice.id, {"amount": "100.00"}, today=DUE + timedelta(days=2))
    db.session.commit()
    assert invoice.status == "partially_paid"
    assert jobs.mark_overdue(DUE + timedelta(days=3))["overdue"] == 1
    db.session.expire_all()
    assert invoice.status == "overdue"
    assert len(_sent("invoice_overdue")) == 1


def test_stale_quotations_expire(app):
    client = make_client()
    quotation = services.create_quotation(
        {"client_id": client.id, "valid_until": date(2026, 3, 10), "lines": two_lines()},
        today=TODAY,
    )
    db.session.commit()
    assert jobs.mark_overdue(date(2026, 3, 10))["quotations_expired"] == 0
    assert jobs.mark_overdue(date(2026, 3, 11))["quotations_expired"] == 1
    db.session.expire_all()
    assert quotation.status == "expired"


def _contract(client, creator, renewal: date) -> Contract:
    contract = Contract(
        client_id=client.id,
        title="Annual advisory",
        value=120000,
        start_date=date(2025, 6, 1),
        renewal_date=renewal,
        status="active",
        document_id=None,
        created_by_id=creator.user_id,
    )
    db.session.add(contract)
    db.session.commit()
    return contract


def test_contract_renewal_reminders_at_60_and_30_days_once_each(app):
    branch = make_branch(tz="UTC")
    rm, creator = make_staff("Agent", branch), make_staff("Manager", branch)
    client = make_client(rm)
    renewal = date(2026, 9, 30)
    _contract(client, creator, renewal)

    def run(days_before: int) -> int:
        return jobs.send_contract_renewals(renewal - timedelta(days=days_before))[
            "contract_renewal"
        ]

    assert run(61) == 0
    assert run(60) == 2  # the relationship manager and the creator
    assert run(59) == 0 and run(58) == 0
    assert run(45) == 0
    assert run(30) == 2
    assert run(29) == 0
    assert run(10) == 0
    in_app = [n for n in _sent("contract_renewal") if n.channel == "in_app"]
    assert sorted(n.recipient_user_id for n in in_app) == sorted([rm.user_id, creator.user_id] * 2)
    assert "renews in 60 days" in in_app[0].subject


def test_a_missed_run_catches_up_with_only_the_nearest_threshold(app):
    branch = make_branch(tz="UTC")
    rm = make_staff("Agent", branch)
    client = make_client(rm)
    renewal = date(2026, 9, 30)
    _contract(client, rm, renewal)
    # the job was down from day 62 to day 29: only the 30-day reminder goes, once
    assert jobs.send_contract_renewals(renewal - timedelta(days=28))["contract_renewal"] == 1
    assert jobs.send_contract_renewals(renewal - timedelta(days=27))["contract_renewal"] == 0
    assert "28 days" in _sent("contract_renewal")[0].subject


def test_the_jobs_are_scheduled_daily():
    assert BY_NAME["invoice-overdue"].func == "app.billing.jobs.mark_overdue"
    assert BY_NAME["contract-renewals"].func == "app.billing.jobs.send_contract_renewals"


def test_invoices_and_payments_on_the_timeline_renewals_on_the_calendar(app):
    from datetime import UTC, datetime

    from app.clients.timeline import client_timeline
    from app.tasks.calendar import events_for

    branch = make_branch(tz="UTC")
    rm = make_staff("Agent", branch)
    client = make_client(rm)
    invoice = issued_invoice(client)
    services.record_payment(invoice.id, {"amount": "95.82"}, today=TODAY)
    _contract(client, rm, date(2026, 9, 30))
    db.session.commit()
    _, events = client_timeline(client.id, kinds={"invoice", "invoice_payment"})
    titles = [event.title for event in events]
    assert any("INV-2026-000001" in t and "1,195.82" in t for t in titles)
    assert any(t.startswith("Payment of") and "95.82" in t for t in titles)
    calendar = events_for(
        rm.user_id, datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)
    )
    assert [e.title for e in calendar if e.kind == "contract_renewal"] == [
        "Contract renewal: Annual advisory (Asha Verma)"
    ]

"""Loyalty: points earned on each exchange by the rule in settings, spent on vouchers; a short
balance is refused with nothing written, and points never go below zero, also when two
redemptions race on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from app.core.errors import ConflictError, FieldError
from app.extensions import db
from app.forex import services as fx
from app.loyalty import services
from app.loyalty.models import LoyaltyAccount, LoyaltyTransaction, Voucher, VoucherRedemption
from tests.forex_support import (
    desk,
)
from tests.support import api_token, count, make_branch, make_staff


@pytest.fixture
def agent(app):
    return make_staff("Agent", make_branch())


def exchange(client, amount: str, sell="USD", buy="EUR"):
    quote = fx.quote(
        {"client_id": client.id, "sell_currency": sell, "buy_currency": buy, "sell_amount": amount}
    )
    done = fx.execute(quote.id)
    db.session.commit()
    return done


def voucher(cost: int, stock: int | None = None, **fields) -> Voucher:
    row = Voucher(code=f"V{cost}-{stock}", name=f"Voucher {cost}", points_cost=cost, stock=stock)
    for key, value in fields.items():
        setattr(row, key, value)
    db.session.add(row)
    db.session.commit()
    return row


def history(client) -> list[tuple]:
    return [
        (t.points, t.balance_after, t.reason)
        for t in db.session.scalars(
            select(LoyaltyTransaction)
            .where(LoyaltyTransaction.client_id == client.id)
            .order_by(LoyaltyTransaction.id)
        )
    ]


def test_points_follow_the_rule_in_settings(agent, app):
    client = desk(agent)
    # 1 point per 100.00 INR sold: 100 USD * 83 = 8,300 INR -> 83 points
    assert exchange(client, "100.00").points_earned == 83
    # 1.20 USD = 99.60 INR: less than a whole unit, no points and no transaction
    assert exchange(client, "1.20").points_earned == 0
    app.config["CRM_LOYALTY_POINTS_PER_UNIT"] = 5
    app.config["CRM_LOYALTY_UNIT_AMOUNT"] = "1000.00"
    try:
        # 250 USD = 20,750 INR -> 20 whole thousands -> 100 points
        assert exchange(client, "250.00").points_earned == 100
    finally:
        app.config["CRM_LOYALTY_POINTS_PER_UNIT"] = 1
        app.config["CRM_LOYALTY_UNIT_AMOUNT"] = "100.00"
    assert history(client) == [(83, 83, "earn"), (100, 183, "earn")]
    assert services.points_of(client.id) == 183


def test_redeeming_spends_points_and_stock(agent):
    client = desk(agent)
    exchange(client, "700.00")  # 58,100 INR -> 581 points
    coupon = voucher(500, stock=2)
    redemption = services.redeem({"client_id": client.id, "voucher_id": coupon.id})
    db.session.commit()
    assert redemption.points == 500 and services.points_of(client.id) == 81
    assert history(client)[-1] == (-500, 81, "redeem")
    assert db.session.get(Voucher, coupon.id).stock == 1


def test_short_points_are_refused_naming_both_numbers_with_nothing_written(agent):
    client = desk(agent)
    exchange(client, "145.00")  # 12,035 INR -> 120 points
    coupon = voucher(500)
    before = (count(LoyaltyTransaction), count(VoucherRedemption))
    with pytest.raises(FieldError) as refused:
        services.redeem({"client_id": client.id, "voucher_id": coupon.id})
    db.session.rollback()
    assert refused.value.status == 422
    assert refused.value.message == "needs 500 points, the client has 120."
    assert (count(LoyaltyTransaction), count(VoucherRedemption)) == before
    assert services.points_of(client.id) == 120


def test_inactive_or_exhausted_vouchers_are_refused(agent):
    client = desk(agent)
    exchange(client, "700.00")
    for coupon in (voucher(10, active=False), voucher(10, stock=0)):
        with pytest.raises(ConflictError):
            services.redeem({"client_id": client.id, "voucher_id": coupon.id})
        db.session.rollback()
    assert services.points_of(client.id) == 581


def test_the_database_refuses_negative_points(agent):
    client = desk(agent)
    db.session.add(LoyaltyAccount(client_id=client.id, points=-1))
    with pytest.raises(Exception, match="ck_loyalty_account_points|CHECK"):
        db.session.commit()
    db.session.rollback()


def test_the_api_redeems_and_refuses(agent, client):
    owner = desk(agent)
    exchange(owner, "145.00")
    cheap, dear = voucher(100), voucher(500)
    headers = {"Authorization": f"Bearer {api_token(client, agent.user.username)}"}
    ok = client.post(
        "/api/v1/loyalty/redeem",
        json={"client_id": owner.id, "voucher_id": cheap.id},
        headers=headers,
    )
    assert ok.status_code == 201 and ok.json["points_left"] == 20
    short = client.post(
        "/api/v1/loyalty/redeem",
        json={"client_id": owner.id, "voucher_id": dear.id},
        headers=headers,
    )
    assert short.status_code == 422
    assert short.json["message"] == {"points": ["needs 500 points, the client has 20."]}
    other = make_staff("Agent", make_branch())
    db.session.commit()
    headers = {"Authorization": f"Bearer {api_token(client, other.user.username)}"}
    hidden = client.post(
        "/api/v1/loyalty/redeem",
        json={"client_id": owner.id, "voucher_id": cheap.id},
        headers=headers,
    )
    assert hidden.status_code == 404


def test_concurrent_redemptions_never_go_negative(pg_app):
    client = desk(make_staff("Agent", make_branch()))
    exchange(client, "700.00")  # 581 points: room for two 250-point vouchers, not five
    client_id, coupon_id = client.id, voucher(250).id  # plain ids: threads share no ORM object
    start = threading.Barrier(5)
    outcomes = []

    def redeem() -> None:
        with pg_app.app_context():
            try:
                start.wait()
                services.redeem({"client_id": client_id, "voucher_id": coupon_id})
                db.session.commit()
                outcomes.append("redeemed")
            except Exception as exc:  # noqa: BLE001  (the refusal is what is checked)
                db.session.rollback()
                outcomes.append(getattr(exc, "message", repr(exc)))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=redeem) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["needs 250 points, the client has 81."] * 3 + ["redeemed"] * 2
    db.session.expire_all()
    assert services.points_of(client_id) == 81
    assert count(VoucherRedemption) == 2


def test_a_manager_adds_a_voucher_and_redeems_it_on_screen(agent, client):
    from tests.support import login

    owner = desk(agent)
    exchange(owner, "145.00")  # 120 points
    manager = make_staff("Manager", owner.branch)
    db.session.commit()
    login(client, manager.user.username)
    added = client.post(
        "/voucherview/add",
        data={"code": "cafe", "name": "Coffee voucher", "points_cost": "100", "active": "y"},
    )
    assert added.status_code == 302
    coupon = db.session.scalars(select(Voucher).where(Voucher.code == "CAFE")).one()
    assert "Coffee voucher" in client.get("/loyalty/redeem").get_data(as_text=True)
    done = client.post(
        "/loyalty/redeem",
        data={"client_id": owner.id, "voucher_id": coupon.id},
        follow_redirects=True,
    )
    assert "Coffee voucher redeemed for 100 points; 20 points left." in done.get_data(as_text=True)
    short = client.post(
        "/loyalty/redeem",
        data={"client_id": owner.id, "voucher_id": coupon.id},
        follow_redirects=True,
    )
    assert "needs 100 points, the client has 20." in short.get_data(as_text=True)
    assert services.points_of(owner.id) == 20
    listing = client.get("/loyaltytransactionview/list/").get_data(as_text=True)
    assert "Voucher Coffee voucher" in listing and "Exchange FX-" in listing

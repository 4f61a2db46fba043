"""Health, metrics and the payment hook over HTTP."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from core import checks
from core.models import OutboxMessage, Payment
from runtime.redis import RedisHandle, client_for
from runtime.services import Services
from tests.conftest import AIRTEL_SECRET
from tests.support import post_signed, run_worker
from web.app import create_app

KEY = "test-webhook-key"


def receipt(**fields):
    body = {"provider": "airtel", "transaction_id": "QK1", "phone": "0711000001",
            "amount": 50_000, "currency": "KES", "reference": "0711000001",
            "occurred_at": "2026-03-02T09:00:00Z"}
    body.update(fields)
    return body


def pay(client, body):
    return post_signed(client, body, secret=AIRTEL_SECRET)


def count(world, model):
    with world.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model))


def test_healthz_reports_both_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["database"]["ok"] and response.json["redis"]["ok"]


def test_healthz_is_503_at_once_when_redis_is_down(services):
    dead = RedisHandle(client_for("redis://127.0.0.1:1/0"), "redis://127.0.0.1:1/0")
    broken = Services(settings=services.settings, db=services.db, redis=dead, clock=services.clock)
    started = time.perf_counter()
    response = create_app(services=broken).test_client().get("/healthz")
    assert time.perf_counter() - started < 5.0  # not hanging on a dead Redis
    assert response.status_code == 503
    assert response.json["redis"]["ok"] is False and response.json["database"]["ok"] is True


def test_metrics_count_loans_by_status(client, world):
    world.listed_loan()
    body = client.get("/metrics").get_data(as_text=True)
    assert 'harambee_loans{status="listed"} 1.0' in body


def test_payment_hook_needs_the_key_and_changes_nothing_without_it(client, world):
    member = world.member("Juma Hassan", phone="+254711000001")
    for key in ("", "wrong"):
        response = post_signed(client, receipt(), secret=AIRTEL_SECRET, key=key)
        assert response.status_code == 403
    assert count(world, Payment) == 0
    assert world.wallet(member).balance == 0


def test_top_up_by_phone_in_any_form_and_replay_is_harmless(client, world):
    member = world.member("Juma Hassan", phone="+254711000001")
    first = pay(client, receipt(reference="254 711 000 001"))
    again = pay(client, receipt(reference="254 711 000 001"))
    assert first.status_code == 200 and first.json["kind"] == "topup"
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert world.wallet(member).balance == 50_000
    conflict = pay(client, receipt(amount=1))
    assert conflict.status_code == 409
    assert world.wallet(member).balance == 50_000


def test_repayment_by_loan_number_reaches_every_lender(client, world, services):
    loan = world.disbursed_loan(lenders=3, amount=300_000)
    response = pay(client, receipt(
        transaction_id="QK2", reference=loan.number.lower(), amount=loan.installments[0].amount))
    assert response.status_code == 200 and response.json["kind"] == "repayment"
    run_worker(services)  # the job the hook enqueued writes the lenders' notices
    with world.uow() as uow:
        shares = uow.session.scalars(select(OutboxMessage.text).where(
            OutboxMessage.template == "sms.lender_repaid")).all()
        assert checks.check(uow) == []
    assert len(shares) == 3


def test_bad_payment_bodies_are_400_not_500(client, world):
    bad = [None, [], "text", receipt(amount="500"), receipt(amount=-5), receipt(amount=True),
           receipt(currency="USD"), receipt(transaction_id=""), receipt(occurred_at="yesterday"),
           receipt(phone=12), receipt(transaction_id="x" * 200), receipt(provider=7)]
    for body in bad:
        response = pay(client, body)
        assert response.status_code == 400, body
        assert response.json["status"] == "rejected"
    garbage = client.post(f"/hooks/payments?key={KEY}", data=b"\xff\xfe{",
                          content_type="application/json")
    assert garbage.status_code == 400
    assert count(world, Payment) == 0


def test_unmatched_receipt_is_held_in_suspense(client, world):
    response = pay(client, receipt(reference="for mama"))
    assert response.status_code == 200 and response.json["kind"] == "unmatched"
    with world.uow() as uow:
        assert checks.check(uow) == []


def test_metrics_show_payouts_and_a_pause_for_float(client, world, services):
    from core import payouts

    lender = world.lender(balance=100_000)
    payouts.record_float(services.uow(), "console", 1_000, world.now)
    world.withdraw(lender, 20_000, key="w1")  # the float cannot cover it: it waits
    body = client.get("/metrics").get_data(as_text=True)
    assert 'harambee_payouts{status="pending"} 1.0' in body
    assert "harambee_payouts_paused 1.0" in body
    assert 'harambee_provider_float_minor{provider="console"} 1000.0' in body

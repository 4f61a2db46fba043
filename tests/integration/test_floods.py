"""Floods are bounded: per-phone and per-address rate limits counted in Redis (across
web processes), delivery reports for ids we never sent dropped after a while, and
/metrics behind a token when one is set."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy import func, select

from core.models import DeliveryReport, InboundSms
from tests.conftest import AIRTEL_SECRET
from tests.sms_hook import KEY, send
from tests.support import post_signed
from web.app import create_app
from workers import duties


def with_security(services, **changes):
    settings = services.settings
    security = dataclasses.replace(settings.security, **changes)
    return dataclasses.replace(services, settings=dataclasses.replace(settings,
                                                                      security=security))


def count(world, model) -> int:
    with world.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model))


def test_a_phone_flooding_the_sms_hook_is_told_to_wait_and_others_are_not(world, services):
    svc = with_security(services, sms_rate_limit="5 per minute")
    # Two web processes, one Redis: they count together.
    first, second = (create_app(services=svc).test_client() for _ in range(2))
    flooder, neighbour = world.member("Flood Er"), world.member("Nei Ghbour")
    answers = [send(first if n % 2 else second, flooder.phone, f"BAL {n}") for n in range(8)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
    # No X-RateLimit headers (two Redis round trips each; gateways ignore them), but a
    # refusal still says when to come back: at most the window's length.
    assert not [h for a in answers for h, _ in a.headers if h.startswith("X-RateLimit")]
    assert answers[-1].headers["Retry-After"] == "60"
    assert send(first, neighbour.phone, "BAL").status_code == 200
    assert count(world, InboundSms) == 6  # the refused ones stored nothing


def test_the_payments_hook_is_limited_per_calling_address(world, services):
    client = create_app(services=with_security(
        services, payments_rate_limit="3 per minute")).test_client()
    loan = world.disbursed_loan()
    codes = []
    for n in range(5):
        body = {"provider": "airtel", "transaction_id": f"AIR{n}", "amount": 10_000,
                "currency": "KES", "reference": loan.number,
                "occurred_at": world.now.isoformat()}
        codes.append(post_signed(client, body, secret=AIRTEL_SECRET).status_code)
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]


def test_delivery_reports_for_ids_we_never_sent_do_not_stay(world, services, client, clock):
    for n in range(3):
        assert client.post(f"/hooks/sms/delivery?key={KEY}", data={
            "id": f"ATXnever{n}", "status": "Success"}).status_code == 200
    clock.advance(days=1)
    client.post(f"/hooks/sms/delivery?key={KEY}", data={"id": "ATXfresh", "status": "Failed"})
    assert count(world, DeliveryReport) == 4
    clock.advance(days=services.settings.security.unmatched_report_days, hours=1)
    duties.tick(services, clock() - timedelta(days=1), ["prune_reports"])
    assert count(world, DeliveryReport) == 1  # the old ones gone, the newer one kept
    duties.tick(services, clock(), ["prune_reports"])
    assert count(world, DeliveryReport) == 0


def test_metrics_need_the_token_when_one_is_set(services):
    client = create_app(services=with_security(services, metrics_token="m" * 24)).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer " + "m" * 24})
    assert ok.status_code == 200 and b"harambee_loans" in ok.data

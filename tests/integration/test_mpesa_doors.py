"""The money doors nobody can forge: Daraja's hooks need the secret path token and an
allowed address; the generic payment hook needs its provider's signature within five
minutes. Every refusal is 4xx and writes nothing; a confirmation sent fifty times at
once is credited once and never answered 503."""
from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from core import checks
from core.models import Account, Confirmation, OutboxMessage, Payment
from runtime.services import Services
from tests.conftest import AIRTEL_SECRET, CALLBACK_TOKEN
from tests.support import NAIROBI, START, all_at_once, paybill, post_signed, run_worker
from web.app import create_app
from web.payments import SIGNATURE, sign

KEY = "test-webhook-key"


def written(world) -> tuple[int, int, list, int]:
    with world.uow() as uow:
        s = uow.session
        return (s.scalar(select(func.count()).select_from(Payment)),
                s.scalar(select(func.count()).select_from(OutboxMessage)),
                sorted(s.execute(select(Account.code, Account.credits_posted)).tuples()),
                s.scalar(select(func.count()).select_from(Confirmation)))


def c2b_body(**fields):
    body = {"TransactionType": "Pay Bill", "TransID": "SBK1A2B3C4",
            "TransTime": START.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"),
            "TransAmount": "500.00", "BusinessShortCode": "174379",
            "BillRefNumber": "0711000001", "InvoiceNumber": "", "OrgAccountBalance": "",
            "ThirdPartyTransID": "", "MSISDN": "2547****0001", "FirstName": "Juma",
            "MiddleName": "", "LastName": "Hassan"}
    body.update(fields)
    return body


def receipt(**fields):
    body = {"provider": "airtel", "transaction_id": "AT1", "phone": "0711000001",
            "amount": 50_000, "currency": "KES", "reference": "0711000001",
            "occurred_at": START.isoformat()}
    body.update(fields)
    return body


@pytest.mark.parametrize("path", ["c2b/{t}/confirmation", "c2b/{t}/validation", "stk/{t}",
                                  "b2c/{t}/result", "b2c/{t}/timeout", "b2c/{t}/balance",
                                  "b2c/{t}/status/HRB0000000001"])
def test_daraja_hooks_refuse_a_missing_or_wrong_token(client, world, path):
    world.member("Juma Hassan", phone="+254711000001")
    before = written(world)
    for token in ("", "wrong-token", CALLBACK_TOKEN + "x", CALLBACK_TOKEN.upper()):
        response = client.post(f"/hooks/{path.format(t=token)}", json=c2b_body())
        assert response.status_code in (403, 404, 405), (token, response.status_code)
    assert written(world) == before


def test_daraja_hooks_refuse_an_address_not_allowed(services, world):
    world.member("Juma Hassan", phone="+254711000001")
    s = services.settings
    guarded = Services(settings=replace(s, mpesa=replace(s.mpesa, allowed_ips=("10.0.0.0/8",))),
                       db=services.db, redis=services.redis, clock=services.clock)
    client = create_app(services=guarded).test_client()
    before = written(world)
    refused = client.post(f"/hooks/c2b/{CALLBACK_TOKEN}/confirmation", json=c2b_body())
    assert refused.status_code == 403 and written(world) == before
    allowed = client.post(f"/hooks/c2b/{CALLBACK_TOKEN}/confirmation", json=c2b_body(),
                          environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert allowed.status_code == 200 and written(world)[3] == before[3] + 1
    run_worker(services)
    assert written(world)[0] == before[0] + 1


def test_a_proxy_is_believed_only_when_trusted(services, world):
    world.member("Juma Hassan", phone="+254711000001")
    s = services.settings
    behind = replace(s, mpesa=replace(s.mpesa, allowed_ips=("196.201.214.200",)))
    forwarded = {"X-Forwarded-For": "196.201.214.200"}
    untrusted = create_app(services=Services(settings=behind, db=services.db,
                                             redis=services.redis, clock=services.clock))
    assert untrusted.test_client().post(f"/hooks/c2b/{CALLBACK_TOKEN}/confirmation",
                                        json=c2b_body(), headers=forwarded).status_code == 403
    trusted = create_app(services=Services(
        settings=replace(behind, security=replace(behind.security, trusted_proxies=1)),
        db=services.db, redis=services.redis, clock=services.clock))
    assert trusted.test_client().post(f"/hooks/c2b/{CALLBACK_TOKEN}/confirmation",
                                      json=c2b_body(), headers=forwarded).status_code == 200


@pytest.mark.parametrize("fields", [
    {"TransAmount": "9223372036854775808.00"},  # 2**63: overflows a counter
    {"TransAmount": "250001.00"},  # above M-Pesa's largest transaction
    {"TransAmount": "-5.00"}, {"TransAmount": "1e3"}, {"TransAmount": "500.505"},
    {"TransID": "SBK\x00X"}, {"BillRefNumber": "L10\x0042"}, {"TransTime": "19000101000000"},
    {"TransTime": "29990101000000"}, {"TransID": None},
])
def test_a_confirmation_that_can_never_be_valid_is_400_and_writes_nothing(client, world, fields):
    world.member("Juma Hassan", phone="+254711000001")
    before = written(world)
    response = client.post(f"/hooks/c2b/{CALLBACK_TOKEN}/confirmation", json=c2b_body(**fields))
    assert response.status_code == 400
    assert written(world) == before


def test_validation_refuses_unknown_accounts_and_amounts_with_darajas_codes(client, world):
    world.member("Juma Hassan", phone="+254711000001")
    loan = world.listed_loan()

    def validate(**fields):
        answer = client.post(f"/hooks/c2b/{CALLBACK_TOKEN}/validation", json=c2b_body(**fields))
        assert answer.status_code == 200
        return answer.json["ResultCode"]

    assert validate() == "0"
    assert validate(BillRefNumber=loan.number.lower()) == "0"
    assert validate(BillRefNumber="for mama") == "C2B00012"
    assert validate(BillRefNumber="L999999") == "C2B00012"
    assert validate(TransAmount="250001.00") == "C2B00013"
    assert validate(TransID="bad\x00") == "C2B00016"
    assert written(world)[0] == 0


def test_fifty_identical_confirmations_at_once_credit_once_and_none_is_503(services, world):
    member = world.member("Juma Hassan", phone="+254711000001")
    app = create_app(services=services)
    body = json.dumps(c2b_body(TransID="SBKRACE001")).encode()

    def confirm() -> int:
        return app.test_client().post(f"/hooks/c2b/{CALLBACK_TOKEN}/confirmation", data=body,
                                      content_type="application/json").status_code

    statuses = all_at_once([confirm] * 50)
    assert statuses == [200] * 50
    run_worker(services)
    assert world.wallet(member).balance == 50_000
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Payment)) == 1
        assert uow.session.scalar(select(func.count()).select_from(Confirmation)) == 1
        assert checks.check(uow) == []


def test_one_receipt_is_counted_once_whichever_door(client, world, services, clock):
    """The same M-Pesa receipt by the paybill door twice (a replay) counts once."""
    member = world.member("Juma Hassan", phone="+254711000001")
    first = paybill(client, trans_id="SBKONE0001", amount=50_000, account=member.phone,
                    when=clock())
    again = paybill(client, trans_id="SBKONE0001", amount=50_000, account=member.phone,
                    when=clock())
    assert first.status_code == again.status_code == 200
    run_worker(services)
    assert world.wallet(member).balance == 50_000


def test_the_generic_hook_refuses_forgeries_and_writes_nothing(client, world, clock):
    member = world.member("Juma Hassan", phone="+254711000001")
    before = written(world)
    now = int(time.time())  # signatures are stamped by the provider's real clock
    raw = json.dumps(receipt()).encode()

    def post(body: bytes, signature: str | None):
        headers = {SIGNATURE: signature} if signature is not None else {}
        return client.post(f"/hooks/payments?key={KEY}", data=body,
                           content_type="application/json", headers=headers)

    forged = [
        post(raw, None),  # unsigned
        post(raw, sign("not-the-secret-at-all", raw)),  # wrong secret
        post(raw, sign(AIRTEL_SECRET, raw).replace("v1=", "v1=0")),  # tampered signature
        post(raw, sign(AIRTEL_SECRET, raw, now - 3600)),  # stale
        post(raw, sign(AIRTEL_SECRET, raw, now + 3600)),  # from the future
        post(raw + b" ", sign(AIRTEL_SECRET, raw)),  # body changed after signing
    ]
    evil = json.dumps(receipt(provider="evilpay")).encode()
    forged.append(post(evil, sign(AIRTEL_SECRET, evil)))  # a provider not configured
    assert [r.status_code for r in forged] == [403] * len(forged)
    assert written(world) == before
    assert world.wallet(member).balance == 0


@pytest.mark.parametrize("body", [
    receipt(amount=2**63), receipt(amount=2**63 + 5), receipt(amount=25_000_001),
    receipt(amount=0), receipt(reference="07110\x0000001"), receipt(transaction_id="A\x00"),
    receipt(occurred_at="1900-01-01T00:00:00Z"), receipt(occurred_at="2999-01-01T00:00:00Z"),
])
def test_the_generic_hook_answers_400_to_what_can_never_succeed(client, world, body):
    world.member("Juma Hassan", phone="+254711000001")
    before = written(world)
    response = post_signed(client, body, secret=AIRTEL_SECRET)
    assert response.status_code == 400, response.json
    assert written(world) == before


def test_the_generic_hook_takes_a_signed_payment_within_the_window(client, world, clock):
    member = world.member("Juma Hassan", phone="+254711000001")
    late = int(time.time()) - 4 * 60
    ok = post_signed(client, receipt(transaction_id="AT2"), secret=AIRTEL_SECRET, moment=late)
    assert ok.status_code == 200 and ok.json["kind"] == "topup"
    assert world.wallet(member).balance == 50_000

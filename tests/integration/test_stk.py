"""Pay now: asked by SMS (`PAY 500`, `LIPA 500`) or USSD, pushed once by a job, and its
result recorded once by the receipt, or told as "nothing was taken"."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import checks, stk
from core.errors import InvalidInput, NotAllowed
from core.models import OutboxMessage, Payment, StkRequest, StkStatus
from core.stk import PromptRefused
from tests.conftest import CALLBACK_TOKEN
from tests.support import NAIROBI, paybill, run_worker
from workers.stk import push, sweep

KEY = "test-webhook-key"


def callback(checkout: str, *, code: int = 0, amount: int = 1050, receipt: str = "SBKSTK0001",
             when=None) -> dict:
    body: dict = {"MerchantRequestID": "29115-34620561-1", "CheckoutRequestID": checkout,
                  "ResultCode": code, "ResultDesc": "done"}
    if code == 0:
        stamp = int(when.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S"))
        body["CallbackMetadata"] = {"Item": [
            {"Name": "Amount", "Value": amount}, {"Name": "MpesaReceiptNumber", "Value": receipt},
            {"Name": "TransactionDate", "Value": stamp},
            {"Name": "PhoneNumber", "Value": 254711000001}]}
    return {"Body": {"stkCallback": body}}


def the_request(world) -> StkRequest:
    with world.uow() as uow:
        return uow.session.scalars(select(StkRequest).order_by(StkRequest.id.desc())).first()


def last_text(world, phone: str) -> str:
    with world.uow() as uow:
        return uow.session.scalars(select(OutboxMessage.text).where(
            OutboxMessage.phone == phone).order_by(OutboxMessage.id.desc())).first()


@pytest.mark.parametrize("words", ["PAY 1050", "lipa 1,050", "Pay Ksh 1050"])
def test_pay_by_sms_prompts_the_phone_and_the_receipt_repays_once(client, world, services,
                                                                  clock, words):
    loan = world.disbursed_loan(amount=100_000)
    borrower = world.loan(loan.number).borrower
    sent = client.post(f"/hooks/sms?key={KEY}", data={"from": borrower.phone, "text": words,
                                                     "id": f"ATX-{words}"})
    assert sent.status_code == 200
    run_worker(services)  # answers the SMS, then pushes the prompt
    request = the_request(world)
    assert (request.status, request.amount, request.account) == (StkStatus.SENT, 105_000,
                                                                  loan.number)
    assert "M-Pesa prompt for Ksh 1,050" in last_text(world, borrower.phone)
    body = callback(request.checkout_request_id, amount=1050, when=clock())
    for _ in range(2):  # the callback, and again
        assert client.post(f"/hooks/stk/{CALLBACK_TOKEN}", json=body).status_code == 200
    # the same receipt by the paybill door too: still once
    assert paybill(client, trans_id="SBKSTK0001", amount=105_000, account=loan.number,
                   when=clock()).status_code == 200
    run_worker(services)  # records the paybill confirmation: the receipt is known already
    assert world.loan(loan.number).repaid == 105_000
    with world.uow() as uow:
        assert len(uow.session.scalars(select(Payment.id).where(
            Payment.transaction_id == "SBKSTK0001")).all()) == 1
        assert checks.check(uow) == []
    assert the_request(world).status == StkStatus.PAID


def test_a_cancelled_prompt_takes_nothing_and_says_so(client, world, services, clock):
    loan = world.disbursed_loan(amount=100_000)
    borrower = world.loan(loan.number).borrower
    asked = stk.request(services.uow(), member_id=borrower.id, amount=50_000, provider="mpesa",
                        key="k1", now=clock())
    run_worker(services)
    checkout = the_request(world).checkout_request_id
    client.post(f"/hooks/stk/{CALLBACK_TOKEN}", json=callback(checkout, code=1032))
    assert the_request(world).status == StkStatus.CANCELLED
    assert world.loan(loan.number).repaid == 0
    assert "Nothing was taken" in last_text(world, borrower.phone)
    assert asked.account == loan.number


def test_a_prompt_refused_by_the_provider_is_never_pushed_again(world, services, clock):
    loan = world.disbursed_loan(amount=100_000)
    borrower = world.loan(loan.number).borrower

    class Refusing:
        provider = "mpesa"
        pushed = 0

        def push(self, prompt):
            Refusing.pushed += 1
            raise PromptRefused("the phone is not on M-Pesa")

    request = stk.request(services.uow(), member_id=borrower.id, amount=50_000,
                          provider="mpesa", key="k2", now=clock())
    assert push(services.uow, Refusing(), request.id, clock()) == "refused"
    assert push(services.uow, Refusing(), request.id, clock()) == "skipped"
    assert Refusing.pushed == 1
    assert the_request(world).status == StkStatus.FAILED
    assert "Nothing was taken" in last_text(world, borrower.phone)


def test_a_prompt_with_no_result_is_closed_by_the_sweep(world, services, clock):
    loan = world.disbursed_loan(amount=100_000)
    borrower = world.loan(loan.number).borrower
    stk.request(services.uow(), member_id=borrower.id, amount=50_000, provider="mpesa",
                key="k3", now=clock())
    run_worker(services)
    assert the_request(world).status == StkStatus.SENT
    clock.advance(minutes=11)
    assert sweep(services, clock()) == 1
    assert the_request(world).status == StkStatus.FAILED


def test_pay_now_needs_a_loan_being_repaid_and_a_whole_amount(world, services, clock):
    borrower = world.member("Zawadi Achieng", roles="borrower")
    with pytest.raises(NotAllowed):
        stk.request(services.uow(), member_id=borrower.id, amount=50_000, provider="mpesa",
                    key="k4", now=clock())
    loan = world.disbursed_loan(amount=100_000)
    owner = world.loan(loan.number).borrower
    for amount in (50_050, 0, 10_000_000):
        with pytest.raises(InvalidInput) as refused:
            stk.request(services.uow(), member_id=owner.id, amount=amount, provider="mpesa",
                        key=f"k5-{amount}", now=clock() + timedelta(seconds=1))
        assert refused.value.key == "stk.amount"

"""The Daraja client (mpesa.daraja) over HTTP against the fake Daraja (mpesa.fake), with
its callbacks caught by a local receiver and read by mpesa.callbacks: no monkeypatching,
the real request and parsing code paths."""
from __future__ import annotations

import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from core.config import MpesaSettings
from mpesa.callbacks import (
    account_balances,
    b2c_amount,
    b2c_completed_at,
    b2c_receipt,
    parse_c2b,
    parse_result,
    parse_stk_callback,
    utility_account_balance,
    working_account_balance,
)
from mpesa.daraja import Accepted, Daraja, DarajaError, StkAccepted
from mpesa.fake import FakeDaraja
from runtime.processes import stop as stop_children
from tests.callback_receiver import CallbackReceiver
from tests.support import all_at_once

PHONE = "+254712345678"
OTHER = "+254722000111"
NAIROBI = ZoneInfo("Africa/Nairobi")
SCALE = 100


class Tick:
    """The client's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeDaraja]:
    fake = FakeDaraja(b2c_shortcode="600000", result_delay=0.0).start()
    yield fake
    fake.stop()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def settings(fake: FakeDaraja) -> MpesaSettings:
    return MpesaSettings(
        base_url=fake.base_url, consumer_key=fake.consumer_key,
        consumer_secret=fake.consumer_secret, shortcode=fake.shortcode, passkey=fake.passkey,
        initiator_name=fake.initiator_name, security_credential=fake.security_credential,
        b2c_shortcode=fake.b2c_shortcode, timeout_seconds=5)


@pytest.fixture
def tick() -> Tick:
    return Tick()


@pytest.fixture
def daraja(settings: MpesaSettings, tick: Tick) -> Daraja:
    return Daraja(settings, minor_scale=SCALE, clock=tick)


def now() -> datetime:
    return datetime.now(UTC)


def pay_out(daraja: Daraja, receiver: CallbackReceiver, ocid: str, *, phone: str = PHONE,
            amount: int = 1_500_00) -> Accepted:
    return daraja.b2c(originator_conversation_id=ocid, phone=phone, amount=amount,
                      remarks="Loan L1042", result_url=receiver.url("/b2c/result"),
                      timeout_url=receiver.url("/b2c/timeout"), occasion="L1042")


# --- the token --------------------------------------------------------------------------


def test_the_token_is_fetched_once_and_reused(daraja, fake, receiver):
    pay_out(daraja, receiver, "p-1")
    pay_out(daraja, receiver, "p-2")
    daraja.account_balance(result_url=receiver.url("/balance"),
                           timeout_url=receiver.url("/balance/timeout"))
    assert fake.oauth_requests == 1


def test_the_token_is_refreshed_shortly_before_it_expires(daraja, fake, tick):
    first = daraja.token()
    tick.now += 3500  # Daraja said 3599 s: still kept
    assert daraja.token() == first and fake.oauth_requests == 1
    tick.now += 60  # within a minute of expiry: a new one
    second = daraja.token()
    assert second != first and fake.oauth_requests == 2
    assert daraja.token() == second and fake.oauth_requests == 2


def test_threads_asking_at_once_share_one_token_fetch(daraja, fake):
    fake.answer_delay = 0.3  # every thread arrives while the first fetch is under way
    tokens = all_at_once([daraja.token] * 6)
    assert len(set(tokens)) == 1
    assert fake.oauth_requests == 1


def test_a_token_daraja_no_longer_accepts_is_replaced_once(daraja, fake, receiver):
    pay_out(daraja, receiver, "p-1")
    fake.expire_tokens()  # Daraja revoked it before the time it gave
    pay_out(daraja, receiver, "p-2")
    assert fake.oauth_requests == 2
    fake.wait_idle()
    assert sorted(fake.paid_ocids()) == ["p-1", "p-2"]


def test_wrong_credentials_are_a_permanent_error(settings, fake, receiver):
    daraja = Daraja(replace(settings, consumer_secret="not-the-secret"))
    with pytest.raises(DarajaError) as err:
        pay_out(daraja, receiver, "p-1")
    assert not err.value.transient and err.value.status == 400
    assert err.value.code == "400.008.01"
    assert fake.b2c_requests == {}


# --- STK push ---------------------------------------------------------------------------


def test_stk_push_is_accepted_and_the_customers_payment_comes_back(daraja, fake, receiver):
    accepted = daraja.stk_push(phone=PHONE, amount=500_00, account_reference="L1042",
                               description="Repay L1042", callback_url=receiver.url("/stk"))
    assert isinstance(accepted, StkAccepted) and accepted.checkout_request_id.startswith("ws_CO_")
    pending = fake.pending_stk(PHONE)
    assert [(p.checkout_request_id, p.amount, p.account_reference, p.phone) for p in pending] == [
        (accepted.checkout_request_id, 500, "L1042", "254712345678")]
    assert fake.pending_stk(OTHER) == []

    fake.accept_stk(accepted.checkout_request_id)
    (callback,) = receiver.wait_for("/stk")
    assert callback.content_type == "application/json"
    result = parse_stk_callback(callback.raw, scale=SCALE, zone=NAIROBI, now=now())
    assert result.paid and result.checkout_request_id == accepted.checkout_request_id
    assert result.merchant_request_id == accepted.merchant_request_id
    assert (result.amount, result.phone) == (500_00, PHONE)
    assert result.receipt == fake.prompts[accepted.checkout_request_id].receipt
    assert abs(result.paid_at - now()) < timedelta(minutes=1)
    assert fake.pending_stk(PHONE) == []


def test_a_cancelled_prompt_and_a_wrong_pin_come_back_unpaid(daraja, fake, receiver):
    fake.pins["254712345678"] = "4321"
    first = daraja.stk_push(phone=PHONE, amount=100_00, account_reference="L7",
                            description="Repay L7", callback_url=receiver.url("/stk"))
    second = daraja.stk_push(phone=PHONE, amount=100_00, account_reference="L7",
                             description="Repay L7", callback_url=receiver.url("/stk"))
    assert len(fake.pending_stk("0712345678")) == 2
    fake.cancel_stk(first.checkout_request_id)
    fake.accept_stk(second.checkout_request_id, pin="1111")
    results = {r.checkout_request_id: r for r in (
        parse_stk_callback(c.raw, scale=SCALE, zone=NAIROBI, now=now())
        for c in receiver.wait_for("/stk", 2))}
    cancelled, wrong_pin = results[first.checkout_request_id], results[second.checkout_request_id]
    assert cancelled.cancelled and not cancelled.paid and cancelled.amount is None
    assert wrong_pin.result_code == "2001" and wrong_pin.receipt is None
    with pytest.raises(ValueError):
        fake.accept_stk(first.checkout_request_id)  # already ended


def test_the_stk_password_is_checked_by_the_fake(settings, fake, receiver):
    daraja = Daraja(replace(settings, passkey="another-passkey"))
    with pytest.raises(DarajaError) as err:
        daraja.stk_push(phone=PHONE, amount=100_00, account_reference="L7", description="x",
                        callback_url=receiver.url("/stk"))
    assert err.value.code == "500.001.1001" and fake.prompts == {}


@pytest.mark.parametrize("kwargs, reason", [
    ({"amount": 100_50}, "cents"),
    ({"amount": 0}, "positive"),
    ({"amount": -100_00}, "positive"),
    ({"amount": 250_001_00}, "max_amount"),
    ({"phone": "0712345678"}, "E.164"),
    ({"phone": "+255712345678"}, "E.164"),
    ({"account_reference": "L1042-and-more"}, "account_reference"),
    ({"account_reference": ""}, "account_reference"),
    ({"description": "Repay loan L1042"}, "description"),
    ({"callback_url": "not a url"}, "http"),
])
def test_stk_push_refuses_what_daraja_cannot_take_before_sending(daraja, fake, receiver, kwargs,
                                                                 reason):
    request = {"phone": PHONE, "amount": 100_00, "account_reference": "L7",
               "description": "Repay L7", "callback_url": receiver.url("/stk"), **kwargs}
    with pytest.raises(ValueError, match=reason):
        daraja.stk_push(**request)
    assert fake.requests_seen == []  # not even a token was fetched


# --- B2C --------------------------------------------------------------------------------


def test_a_b2c_payment_is_made_once_and_its_result_read(daraja, fake, receiver):
    fake.set_float("10000.00")
    accepted = pay_out(daraja, receiver, "payout-1", amount=1_500_00)
    assert accepted.originator_conversation_id == "payout-1"
    assert accepted.conversation_id.startswith("AG_")
    (callback,) = receiver.wait_for("/b2c/result")
    assert callback.content_type == "application/json"
    result = parse_result(callback.raw)
    assert result.succeeded and result.originator_conversation_id == "payout-1"
    assert result.conversation_id == accepted.conversation_id
    receipt = b2c_receipt(result)
    assert receipt == result.transaction_id == fake.payments[0].receipt
    assert b2c_amount(result, scale=SCALE) == 1_500_00
    assert utility_account_balance(result, scale=SCALE) == 8_500_00  # the float, after
    assert working_account_balance(result, scale=SCALE) == 0
    assert abs(b2c_completed_at(result, zone=NAIROBI, now=now()) - now()) < timedelta(minutes=1)
    assert [(p.originator_conversation_id, p.phone, p.amount) for p in fake.payments] == [
        ("payout-1", "254712345678", 1500)]


def test_the_same_originator_conversation_id_is_refused_and_never_paid_twice(daraja, fake,
                                                                             receiver):
    pay_out(daraja, receiver, "payout-1")
    with pytest.raises(DarajaError) as err:
        pay_out(daraja, receiver, "payout-1")
    assert err.value.duplicate and not err.value.transient and not err.value.outcome_unknown
    fake.wait_idle()
    assert fake.paid_ocids() == ["payout-1"]


def test_an_answer_that_times_out_is_transient_and_resending_it_pays_once(settings, fake,
                                                                           receiver):
    daraja = Daraja(replace(settings, timeout_seconds=1))
    daraja.token()
    fake.answer_delay = 1.5  # Daraja takes the payment but answers too late
    with pytest.raises(DarajaError) as err:
        pay_out(daraja, receiver, "payout-slow")
    assert err.value.transient and err.value.outcome_unknown and err.value.status is None
    fake.answer_delay = 0.0
    with pytest.raises(DarajaError) as again:  # the retry a worker would make
        pay_out(daraja, receiver, "payout-slow")
    assert again.value.duplicate
    fake.wait_idle()
    assert fake.paid_ocids() == ["payout-slow"]
    assert len(receiver.wait_for("/b2c/result")) == 1


def test_insufficient_float_fails_without_paying(daraja, fake, receiver):
    fake.set_float("100.00")
    pay_out(daraja, receiver, "payout-big", amount=500_00)
    result = parse_result(receiver.wait_for("/b2c/result")[0].raw)
    assert (result.succeeded, result.result_code) == (False, "1")
    assert "insufficient" in result.result_desc
    assert b2c_receipt(result) is None and b2c_amount(result, scale=SCALE) is None
    assert fake.payments == [] and fake.float_cents == 100_00


@pytest.mark.parametrize("mode, code", [("invalid", "SFC_IC0003"), ("unregistered", "2040"),
                                        ("insufficient", "1")])
def test_failures_on_demand_for_one_phone(daraja, fake, receiver, mode, code):
    fake.fail_b2c(mode, phone=OTHER)
    pay_out(daraja, receiver, "to-other", phone=OTHER)
    pay_out(daraja, receiver, "to-phone", phone=PHONE)
    results = {r.originator_conversation_id: r for r in (
        parse_result(c.raw) for c in receiver.wait_for("/b2c/result", 2))}
    assert results["to-other"].result_code == code and not results["to-other"].succeeded
    assert results["to-phone"].succeeded
    assert fake.paid_ocids() == ["to-phone"]


def test_a_timeout_sends_no_result_at_all_and_status_does_not_know_it(daraja, fake, receiver):
    fake.fail_b2c("timeout", originator_conversation_id="lost-in-queue")
    pay_out(daraja, receiver, "lost-in-queue")
    daraja.transaction_status(originator_conversation_id="lost-in-queue",
                              result_url=receiver.url("/status"),
                              timeout_url=receiver.url("/status/timeout"))
    status = parse_result(receiver.wait_for("/status")[0].raw)
    assert fake.wait_idle()
    assert receiver.at("/b2c/result") == [] and receiver.at("/b2c/timeout") == []
    assert fake.payments == []
    assert (status.succeeded, status.result_code) == (False, "2033")


def test_a_timeout_can_notify_the_queue_timeout_url(daraja, fake, receiver):
    fake.fail_b2c("timeout", originator_conversation_id="slow-queue", notify=True)
    accepted = pay_out(daraja, receiver, "slow-queue")
    timeout = parse_result(receiver.wait_for("/b2c/timeout")[0].raw)
    assert timeout.originator_conversation_id == "slow-queue"
    assert timeout.conversation_id == accepted.conversation_id and not timeout.succeeded
    assert receiver.at("/b2c/result") == [] and fake.payments == []


# --- Transaction Status and Account Balance ---------------------------------------------


def test_transaction_status_tells_a_completed_and_a_lost_payment(daraja, fake, receiver):
    pay_out(daraja, receiver, "paid-1", amount=700_00)
    fake.fail_b2c("lost", originator_conversation_id="paid-silently")
    pay_out(daraja, receiver, "paid-silently", amount=300_00)
    receipt = parse_result(receiver.wait_for("/b2c/result")[0].raw).transaction_id
    for kwargs in ({"originator_conversation_id": "paid-1"}, {"transaction_id": receipt},
                   {"originator_conversation_id": "paid-silently"},
                   {"originator_conversation_id": "never-sent"}):
        accepted = daraja.transaction_status(result_url=receiver.url("/status"),
                                             timeout_url=receiver.url("/status/timeout"),
                                             **kwargs)
        assert isinstance(accepted, Accepted)
    results = [parse_result(c.raw) for c in receiver.wait_for("/status", 4)]
    by_receipt, by_ocid, lost, unknown = results[1], results[0], results[2], results[3]
    for result in (by_ocid, by_receipt):
        assert result.succeeded and result.parameters["TransactionStatus"] == "Completed"
        assert result.parameters["ReceiptNo"] == receipt
        assert result.parameters["OriginatorConversationID"] == "paid-1"
        assert result.parameters["Amount"] == "700"
    assert lost.parameters["TransactionStatus"] == "Completed"  # paid, though no Result came
    assert len(receiver.at("/b2c/result")) == 1
    assert unknown.result_code == "2033" and not unknown.parameters
    assert sorted(fake.paid_ocids()) == ["paid-1", "paid-silently"]


def test_account_balance_round_trip(daraja, fake, receiver):
    fake.set_float("12345.60")
    fake.set_float("500.00", account="working")
    accepted = daraja.account_balance(result_url=receiver.url("/balance"),
                                      timeout_url=receiver.url("/balance/timeout"))
    result = parse_result(receiver.wait_for("/balance")[0].raw)
    assert result.succeeded and result.originator_conversation_id == (
        accepted.originator_conversation_id)
    assert utility_account_balance(result, scale=SCALE) == 12_345_60
    assert working_account_balance(result, scale=SCALE) == 500_00
    assert account_balances(result, scale=SCALE)["Charges Paid Account"].available == 0


def test_a_wrong_security_credential_comes_back_as_result_2001(settings, fake, receiver):
    daraja = Daraja(replace(settings, security_credential="stale"))
    pay_out(daraja, receiver, "bad-credential")
    result = parse_result(receiver.wait_for("/b2c/result")[0].raw)
    assert result.result_code == "2001" and fake.payments == []


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("status, transient", [(500, True), (503, True), (429, True),
                                               (400, False), (403, False)])
def test_server_errors_are_transient_and_client_errors_permanent(daraja, fake, receiver, status,
                                                                  transient):
    daraja.token()
    fake.fail_next_requests(status, path="/mpesa/b2c")
    with pytest.raises(DarajaError) as err:
        pay_out(daraja, receiver, "p-err")
    assert (err.value.transient, err.value.status, err.value.duplicate) == (
        transient, status, False)
    assert err.value.code == f"{status}.000.00"
    pay_out(daraja, receiver, "p-err")  # the same request later goes through
    fake.wait_idle()
    assert fake.paid_ocids() == ["p-err"]


def test_nobody_listening_is_transient_and_certainly_unsent(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daraja = Daraja(replace(settings, base_url=f"http://127.0.0.1:{port}"))
    with pytest.raises(DarajaError) as err:
        daraja.token()
    assert err.value.transient and not err.value.outcome_unknown


def test_daraja_refusing_a_field_is_permanent(daraja, fake, receiver):
    fake.b2c_shortcode = "600111"  # our settings now name a short code Daraja does not know
    with pytest.raises(DarajaError) as err:
        pay_out(daraja, receiver, "p-1")
    assert not err.value.transient and err.value.code == "400.002.02"
    assert "Invalid PartyA" in str(err.value)


def test_no_secret_or_full_phone_number_is_logged(daraja, fake, receiver, caplog):
    caplog.set_level(logging.DEBUG, logger="mpesa")
    token = daraja.token()
    pay_out(daraja, receiver, "p-log")
    daraja.stk_push(phone=PHONE, amount=100_00, account_reference="L7", description="Repay",
                    callback_url=receiver.url("/stk"))
    fake.expire_tokens()
    daraja.transaction_status(originator_conversation_id="p-log",
                              result_url=receiver.url("/status"),
                              timeout_url=receiver.url("/status/timeout"))
    text = caplog.text
    assert "p-log" in text and "+2547****5678" in text
    for secret in (fake.consumer_secret, fake.passkey, fake.security_credential, token,
                   PHONE, PHONE[1:]):
        assert secret not in text


# --- C2B --------------------------------------------------------------------------------


def test_register_urls_then_a_customer_pays_the_bill(daraja, fake, receiver):
    daraja.register_urls(confirmation_url=receiver.url("/c2b/confirm"),
                         validation_url=receiver.url("/c2b/validate"))
    assert fake.registered[fake.shortcode]["ResponseType"] == "Completed"
    paid = fake.pay_bill(PHONE, 1200, "L1042", name="Wanjiru Kamau")
    assert paid["accepted"] and paid["confirmation_status"] == 200
    (validation,) = receiver.at("/c2b/validate")
    (confirmation,) = receiver.at("/c2b/confirm")
    for callback in (validation, confirmation):
        assert callback.content_type == "application/json"
        payment = parse_c2b(callback.raw, scale=SCALE, zone=NAIROBI, now=now())
        assert (payment.trans_id, payment.amount, payment.bill_ref) == (
            paid["trans_id"], 1200_00, "L1042")
        assert payment.payer_name == "Wanjiru Kamau" and payment.shortcode == fake.shortcode
        assert payment.msisdn == "25471****678" and payment.phone is None  # masked


def test_a_rejected_validation_stops_the_payment(daraja, fake, receiver):
    daraja.register_urls(confirmation_url=receiver.url("/c2b/confirm"),
                         validation_url=receiver.url("/c2b/validate"))
    receiver.answers["/c2b/validate"] = (200, {"ResultCode": "C2B00012",
                                               "ResultDesc": "Rejected"})
    paid = fake.pay_bill(PHONE, 300, "nonsense", msisdn="full")
    assert (paid["accepted"], paid["result_code"]) == (False, "C2B00012")
    assert receiver.at("/c2b/confirm") == []
    validation = parse_c2b(receiver.at("/c2b/validate")[0].raw, scale=SCALE, zone=NAIROBI,
                           now=now())
    assert validation.phone == PHONE


def test_an_unreachable_validation_url_follows_the_registered_response_type(daraja, fake,
                                                                             receiver):
    daraja.register_urls(confirmation_url=receiver.url("/c2b/confirm"),
                         validation_url=receiver.url("/c2b/validate"),
                         response_type="Cancelled")
    receiver.answers["/c2b/validate"] = (500, {"error": "down"})
    assert not fake.pay_bill(PHONE, 300, "L1")["accepted"]
    daraja.register_urls(confirmation_url=receiver.url("/c2b/confirm"),
                         validation_url=receiver.url("/c2b/validate"))
    assert fake.pay_bill(PHONE, 300, "L1")["accepted"]
    assert len(receiver.at("/c2b/confirm")) == 1


def test_a_confirmation_replayed_carries_the_same_trans_id(daraja, fake, receiver):
    daraja.register_urls(confirmation_url=receiver.url("/c2b/confirm"),
                         validation_url=receiver.url("/c2b/validate"))
    paid = fake.pay_bill(PHONE, 450, "L9")
    fake.replay_confirmation(paid["trans_id"])
    bodies = [c.json for c in receiver.at("/c2b/confirm")]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert bodies[0]["TransID"] == paid["trans_id"]


@pytest.mark.parametrize("url", ["https://pay.example/mpesa/confirm",
                                 "https://SAFARICOM.example/confirm",
                                 "https://pay.example/c2b?query=1"])
def test_register_urls_refuses_words_daraja_refuses(daraja, fake, url):
    with pytest.raises(ValueError, match="refuses"):
        daraja.register_urls(confirmation_url=url, validation_url="https://pay.example/v")
    token = daraja.token()  # and the fake refuses them too, as Daraja does
    answer = requests.post(fake.base_url + "/mpesa/c2b/v1/registerurl", timeout=5,
                           headers={"Authorization": f"Bearer {token}"},
                           json={"ShortCode": fake.shortcode, "ResponseType": "Completed",
                                 "ConfirmationURL": url,
                                 "ValidationURL": "https://pay.example/v"})
    assert answer.status_code == 400 and fake.registered == {}


# --- the fake as a program --------------------------------------------------------------


def test_the_fake_runs_standalone_and_stops_on_sigterm():
    child = subprocess.Popen(
        [sys.executable, "-m", "mpesa.fake", "--port", "0", "--consumer-key", "k",
         "--consumer-secret", "s", "--float", "2500"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.startswith("Fake Daraja on http://127.0.0.1:"), line
        base = line.split(" on ", 1)[1].strip()
        state = requests.get(base + "/fake/state", timeout=5).json()
        assert state["float"] == "2500.00" and state["oauth_requests"] == 0
        token = requests.get(base + "/oauth/v1/generate?grant_type=client_credentials",
                             auth=("k", "s"), timeout=5).json()
        assert token["expires_in"] == "3599" and token["access_token"]
        assert requests.post(base + "/fake/c2b/pay", timeout=5, json={
            "phone": "0712345678", "amount": 100, "account": "L1"}).json()["accepted"]
    finally:
        stop_children([child], grace=10)
    assert child.returncode == 0
    child.stdout.close()
    child.stderr.close()


def test_the_fakes_defaults_fit_the_settings_defaults(receiver):
    """For the demo: only the base URL and the credentials need setting."""
    with FakeDaraja(result_delay=0.0) as fake:
        daraja = Daraja(MpesaSettings(
            base_url=fake.base_url, consumer_key=fake.consumer_key,
            consumer_secret=fake.consumer_secret, passkey=fake.passkey,
            initiator_name=fake.initiator_name,
            security_credential=fake.security_credential))
        pay_out(daraja, receiver, "demo-1")
        daraja.stk_push(phone=PHONE, amount=100_00, account_reference="L1", description="Repay",
                        callback_url=receiver.url("/stk"))
        assert fake.wait_idle()
        assert fake.paid_ocids() == ["demo-1"] and len(fake.pending_stk()) == 1

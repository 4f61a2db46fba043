"""Payouts step by step, with a gateway that answers as the test says: the hold first,
the provider called outside any transaction, each outcome settling the hold once, and
never a second request for one payout."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from core import checks, disbursements, payouts, settlement
from core.errors import Conflict
from core.models import (
    HoldState,
    LoanStatus,
    Payout,
    PayoutStatus,
    Transfer,
    TransferCode,
    TransferKind,
)
from core.payouts import NeverReceived, Order, Outcome, Refused, Taken, Unsure
from tests.support import World
from workers.payouts import ask_about, send_payout


@dataclass
class Scripted:
    """A payout gateway answering from a script; it records every order it was sent."""

    answers: list = field(default_factory=list)
    asked: list = field(default_factory=list)
    sent: list[Order] = field(default_factory=list)
    provider: str = "console"

    def send(self, order: Order):
        self.sent.append(order)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def ask(self, order: Order):
        answer = self.asked.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def ask_float(self) -> None:
        return None


def payout(world: World, payout_id: int) -> tuple[Payout, Transfer]:
    with world.uow() as uow:
        row = uow.session.get(Payout, payout_id)
        hold = uow.session.get(Transfer, row.hold_id)
        return row, hold


def books_clean(world: World) -> None:
    with world.uow() as uow:
        assert checks.check(uow) == []


@pytest.fixture
def held(world):
    """A lender's withdrawal of Ksh 200, held and not yet sent."""
    lender = world.lender(balance=100_000)
    return lender, world.withdraw(lender, 20_000, key="w1", send=False)


def test_the_hold_comes_first_and_the_wallet_shows_it(world, held):
    lender, out = held
    row, hold = payout(world, out.id)
    assert (row.status, hold.hold_state, hold.amount) == (PayoutStatus.PENDING,
                                                          HoldState.PENDING, 20_000)
    wallet = world.wallet(lender)
    assert (wallet.balance, wallet.available) == (100_000, 80_000)
    books_clean(world)


def test_taken_then_paid_posts_the_hold_once(world, services, held):
    lender, out = held
    gateway = Scripted(answers=[Taken("AG_1")])
    assert send_payout(services.uow, gateway, out.id, world.now) == "sent"
    assert payout(world, out.id)[0].status == PayoutStatus.SENT
    originator = gateway.sent[0].originator
    for _ in range(2):  # the result, and the same result again
        settlement.settle(services.uow(), provider="console", originator=originator,
                          outcome=Outcome(paid=True, receipt="SBK1"), now=world.now,
                          amount=20_000)
    row, hold = payout(world, out.id)
    assert (row.status, row.receipt, hold.hold_state) == (PayoutStatus.PAID, "SBK1",
                                                          HoldState.POSTED)
    assert world.wallet(lender).balance == 80_000
    assert send_payout(services.uow, gateway, out.id, world.now) == "skipped"  # never twice
    assert len(gateway.sent) == 1
    books_clean(world)


def test_a_contradicting_result_is_refused_and_changes_nothing(world, services, held):
    _, out = held
    send_payout(services.uow, Scripted(answers=[Outcome(paid=True, receipt="SBK2")]),
                out.id, world.now)
    with pytest.raises(Conflict):
        settlement.settle(services.uow(), provider="console",
                          originator=payouts.originator_id(out.id),
                          outcome=Outcome(paid=False, detail="late failure"), now=world.now)
    assert payout(world, out.id)[0].status == PayoutStatus.PAID
    books_clean(world)


def test_a_paid_amount_that_differs_is_left_for_an_operator(world, services, held):
    _, out = held
    send_payout(services.uow, Scripted(answers=[Taken(None)]), out.id, world.now)
    settlement.settle(services.uow(), provider="console",
                      originator=payouts.originator_id(out.id),
                      outcome=Outcome(paid=True, receipt="SBK3"), now=world.now, amount=20_001)
    row, hold = payout(world, out.id)
    assert row.status == PayoutStatus.SENT and hold.hold_state == HoldState.PENDING
    assert "20001" in (row.last_error or "")


def test_a_refusal_voids_the_hold_and_tells_the_member(world, services, held):
    lender, out = held
    gateway = Scripted(answers=[Refused("not an M-Pesa number", code="SFC_IC0003")])
    assert send_payout(services.uow, gateway, out.id, world.now) == "refused"
    row, hold = payout(world, out.id)
    assert (row.status, row.result_code, hold.hold_state) == (PayoutStatus.FAILED,
                                                              "SFC_IC0003", HoldState.VOIDED)
    wallet = world.wallet(lender)
    assert wallet.available == wallet.balance == 100_000
    books_clean(world)


def test_no_answer_to_trust_is_asked_about_never_resent(world, services, held):
    _, out = held
    gateway = Scripted(answers=[Unsure("read timeout")])
    assert send_payout(services.uow, gateway, out.id, world.now) == "unsure"
    assert payout(world, out.id)[0].status == PayoutStatus.UNKNOWN
    gateway.asked = [None]  # the answer will come by callback
    assert payouts.to_ask(services.uow(), world.now) == [out.id]
    assert ask_about(services_with(services, gateway), out.id, world.now) == "asked"
    assert payouts.to_ask(services.uow(), world.now) == []  # not again until its time
    assert len(gateway.sent) == 1


def test_a_job_that_died_mid_send_leaves_a_payout_to_ask_about(world, services, held, clock):
    _, out = held
    assert payouts.claim(services.uow(), out.id, clock()) is not None  # and then it died
    assert payouts.to_ask(services.uow(), clock()) == []  # its lease still holds
    clock.advance(seconds=payouts.LEASE.total_seconds() + 1)
    assert payouts.to_ask(services.uow(), clock()) == [out.id]
    assert payout(world, out.id)[0].status == PayoutStatus.UNKNOWN


def test_never_received_fails_only_once_old_enough(world, services, held, clock):
    _, out = held
    gateway = Scripted(answers=[Taken("AG_4")], asked=[NeverReceived(), NeverReceived()])
    send_payout(services.uow, gateway, out.id, clock())
    clock.advance(hours=1)
    ask_about(services_with(services, gateway), out.id, clock())
    assert payout(world, out.id)[0].status == PayoutStatus.SENT
    clock.advance(hours=24)
    ask_about(services_with(services, gateway), out.id, clock())
    row, hold = payout(world, out.id)
    assert (row.status, hold.hold_state) == (PayoutStatus.FAILED, HoldState.VOIDED)
    books_clean(world)


def services_with(services, gateway):
    """These services with another payout gateway."""
    svc = replace(services)
    svc.payouts = gateway
    return svc


def test_a_low_float_pauses_payouts_and_a_new_balance_lets_them_go(world, services, held):
    _, out = held
    payouts.record_float(services.uow(), "console", 10_000, world.now)
    gateway = Scripted(answers=[Outcome(paid=True, receipt="SBK5")])
    assert send_payout(services.uow, gateway, out.id, world.now) == "skipped"
    row, _ = payout(world, out.id)
    assert row.status == PayoutStatus.PENDING and "paused" in (row.last_error or "")
    assert gateway.sent == []
    payouts.record_float(services.uow(), "console", 1_000_000, world.now + timedelta(minutes=1))
    assert send_payout(services.uow, gateway, out.id, world.now) == "settled"
    assert payout(world, out.id)[0].status == PayoutStatus.PAID


def test_a_disbursement_gives_up_after_its_tries_and_waits_for_an_operator(world, services):
    loan = world.funded_loan(amount=100_000)
    tries = services.settings.payouts.max_attempts
    for attempt in range(tries):
        started = disbursements.disburse(services.uow(), loan_id=loan.id, provider="console",
                                         now=world.now)
        assert started is not None and started.key.endswith(f":{attempt + 1}")
        send_payout(services.uow, Scripted(answers=[Refused("no such number")]), started.id,
                    world.now)
    assert disbursements.disburse(services.uow(), loan_id=loan.id, provider="console",
                                  now=world.now) is None
    assert disbursements.funded_awaiting_payout(services.uow()) == []
    assert disbursements.awaiting_attention(services.uow()) == [loan.id]
    assert world.loan(loan.number).status == LoanStatus.FUNDED
    with world.uow() as uow:
        holds = list(uow.session.scalars(select(Transfer.hold_state).where(
            Transfer.loan_id == loan.id, Transfer.kind == TransferKind.PENDING,
            Transfer.code == TransferCode.DISBURSEMENT)))
    assert holds == [HoldState.VOIDED] * tries
    books_clean(world)

"""Reconciliation against M-Pesa's statement: the comparison (core.reconciliation) over
the real database."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import reconciliation
from core.models import Payout, PayoutStatus
from core.payouts import NeverReceived, Order, Outcome, Taken
from core.reconciliation import Line, Side
from tests.statements import b2c, charge, paybill, statement_csv
from tests.support import START

T = {n: START + timedelta(minutes=n) for n in range(20)}  # the statement's day


class MpesaPayouts:
    """Pays at once with the receipt it is given, as M-Pesa's B2C result would."""

    provider = "mpesa"

    def __init__(self) -> None:
        self.receipt = "QB00000000"

    def send(self, order: Order) -> Taken | Outcome:
        return Outcome(paid=True, receipt=self.receipt)

    def ask(self, order: Order) -> Outcome | NeverReceived | None:
        return Outcome(paid=True, receipt=self.receipt)

    def ask_float(self) -> None:
        """No float to report."""


@pytest.fixture
def ledger(world, clock):
    """A loan paid out and a saver, made the day before; then on the statement's day:
    payment A (matched), B (not on the statement), C (on it for another amount), a
    withdrawal paid by M-Pesa with receipt QB00000005, and G after the statement ends."""
    clock.set(START - timedelta(days=1))
    loan = world.disbursed_loan()
    saver = world.lender(balance=800_000, name="Akinyi Saver")
    world.services.payouts = gateway = MpesaPayouts()
    clock.set(T[1])
    world.pay(loan.number, 105_000, transaction_id="QA00000001")
    clock.set(T[2])
    world.pay(loan.number, 70_000, transaction_id="QA00000002")
    clock.set(T[3])
    world.pay(saver.phone, 100_000, transaction_id="QA00000003")
    clock.set(T[4])
    gateway.receipt = "QB00000005"
    world.withdraw(saver, 500_000, key="w1")
    clock.set(T[10])
    world.pay(saver.phone, 30_000, transaction_id="QA00000007")
    return {"loan": loan, "saver": saver}


def the_statement(loan_number: str) -> list[dict]:
    return [
        paybill("QA00000001", T[1], 105_000, loan_number),  # "1,050.00"
        charge("QA00000001", T[1], 1_500),
        paybill("QA00000003", T[3], 105_000, "0712000000"),  # we have KES 1,000
        b2c("QB00000005", T[4], 500_000),
        paybill("QA00000004", T[5], 100_000, loan_number, payer="254711222333"),
        paybill("QA00000006", T[5], 90_000, loan_number, status="Failed"),
    ]


def lines(rows):
    from mpesa.statement import Kind, read_statement
    from tests.statements import NAIROBI

    parsed = read_statement(statement_csv(rows), scale=100, zone=NAIROBI)
    return [Line(r.row, r.receipt, Side.IN if r.kind == Kind.IN else Side.OUT, r.amount,
                 r.completed_at) for r in parsed.rows if r.kind != Kind.CHARGE]


def test_the_comparison_sorts_every_receipt_into_its_kind(world, ledger, monkeypatch):
    monkeypatch.setattr(reconciliation, "CHUNK", 2)  # receipts looked up in several queries
    report = reconciliation.reconcile(world.uow(), provider="mpesa",
                                      lines=lines(the_statement(ledger["loan"].number)))
    assert report.period == (T[1], T[5])
    assert [(i.side, i.receipt) for i in report.matched] == [
        (Side.IN, "QA00000001"), (Side.OUT, "QB00000005")]
    assert [(i.side, i.receipt, i.line.amount) for i in report.missing_from_ledger] == [
        (Side.IN, "QA00000004", 100_000)]
    # B is in the period and not on the statement; G is after it; the day before's
    # top-ups and the console disbursement are outside the period or another provider.
    assert [(i.side, i.receipt, i.entry.amount) for i in report.missing_from_statement] == [
        (Side.IN, "QA00000002", 70_000)]
    (mismatch,) = report.mismatched
    assert (mismatch.receipt, mismatch.line.amount, mismatch.entry.amount) == (
        "QA00000003", 105_000, 100_000)
    assert not report.clean


def test_a_payout_is_matched_by_its_receipt_and_only_once_paid(world, ledger):
    with world.uow() as uow:
        payout = uow.session.scalar(select(Payout).where(Payout.receipt == "QB00000005"))
        assert payout.provider == "mpesa" and payout.status == PayoutStatus.PAID
        payout.status = PayoutStatus.FAILED  # as if our ledger had it failed
        uow.commit()
    report = reconciliation.reconcile(world.uow(), provider="mpesa",
                                      lines=[Line(9, "QB00000005", Side.OUT, 500_000, T[4])])
    assert [i.receipt for i in report.missing_from_ledger] == ["QB00000005"]


def test_an_empty_statement_reports_nothing_missing(world, ledger):
    report = reconciliation.reconcile(world.uow(), provider="mpesa", lines=[])
    assert report.period is None and report.clean and not report.matched

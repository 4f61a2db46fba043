"""Reconciliation against M-Pesa's statement: the comparison (core.reconciliation) over
the real database, and `harambee reconcile` through click, with and without --apply."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from cli import main
from core import reconciliation
from core.models import Payment, PaymentKind, Payout, PayoutStatus
from core.payouts import NeverReceived, Order, Outcome, Taken
from core.reconciliation import Line, Side
from tests.statements import b2c, charge, paybill, statement_csv
from tests.support import START

T = {n: START + timedelta(minutes=n) for n in range(20)}  # the statement's day


class MpesaPayouts:
    """Settles at once with the receipt it is given (paid unless told otherwise), as
    M-Pesa's B2C result would."""

    provider = "mpesa"

    def __init__(self) -> None:
        self.receipt = "QB00000000"
        self.paid = True

    def send(self, order: Order) -> Taken | Outcome:
        return Outcome(paid=self.paid, receipt=self.receipt)

    def ask(self, order: Order) -> Outcome | NeverReceived | None:
        return Outcome(paid=self.paid, receipt=self.receipt)

    def ask_float(self) -> None:
        """No float to report."""


def run(settings, *args):
    env = {"DATABASE_URL": settings.database.url, "REDIS_URL": settings.redis.url,
           "HARAMBEE_INSTANCE": settings.app.instance_dir}
    return CliRunner().invoke(main, list(args), env=env)


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
        paybill("QA00000003", T[3], 105_000, "0712000000"),  # we have Ksh 1,000
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


def test_a_payout_is_matched_by_its_receipt_and_only_once_paid(world, ledger, clock):
    gateway = world.services.payouts
    gateway.receipt, gateway.paid = "QB00000006", False  # failed, as far as we know
    clock.set(T[6])
    world.withdraw(ledger["saver"], 100_000, key="w2")
    with world.uow() as uow:
        paid, failed = uow.session.scalars(select(Payout).where(
            Payout.provider == "mpesa").order_by(Payout.id)).all()
    assert (paid.receipt, paid.status) == ("QB00000005", PayoutStatus.PAID)
    assert (failed.receipt, failed.status) == ("QB00000006", PayoutStatus.FAILED)
    report = reconciliation.reconcile(world.uow(), provider="mpesa", lines=[
        Line(9, "QB00000005", Side.OUT, 500_000, T[4]),
        Line(10, "QB00000006", Side.OUT, 100_000, T[6])])  # M-Pesa says it completed
    assert [i.receipt for i in report.matched] == ["QB00000005"]
    assert [i.receipt for i in report.missing_from_ledger] == ["QB00000006"]
    assert not report.missing_from_statement


def test_an_empty_statement_reports_nothing_missing(world, ledger):
    report = reconciliation.reconcile(world.uow(), provider="mpesa", lines=[])
    assert report.period is None and report.clean and not report.matched


def write(tmp_path: Path, rows, **kw) -> Path:
    path = tmp_path / "ORG_174379_Statement.csv"
    path.write_bytes(statement_csv(rows, **kw))
    return path


def test_the_command_reports_each_kind_for_a_finance_person(services, ledger, tmp_path):
    path = write(tmp_path, the_statement(ledger["loan"].number))
    result = run(services.settings, "reconcile", str(path))
    assert result.exit_code == 1, result.output
    out = result.output
    assert "Traceback" not in out
    assert "4 movements from 2026-03-02 12:01:00 to 2026-03-02 12:05:00" in out
    assert "1 row not completed (ignored)" in out
    assert "1 charge of Ksh 15 (not compared)" in out
    assert "  matched                           2        Ksh 1,050        Ksh 5,000\n" in out
    assert "  missing from the ledger           1        Ksh 1,000                -\n" in out
    assert "  missing from the statement        1          Ksh 700                -\n" in out
    assert "  amount mismatch                   1        Ksh 1,050                -\n" in out
    assert ("  row 10     in   QA00000004   2026-03-02 12:05:00      Ksh 1,000  Pay Bill from "
            f"254711222333 - AMINA OTIENO Acc. {ledger['loan'].number}\n") in out
    assert "  in   QA00000002   2026-03-02 12:02:00        Ksh 700  payment #" in out
    assert f", reference {ledger['loan'].number}\n" in out
    assert ("  row 8      in   QA00000003   statement Ksh 1,050, ledger Ksh 1,000 "
            "(payment #") in out
    assert "QA00000006" not in out and "QA00000007" not in out  # failed; after the period
    assert out.rstrip().endswith("3 items to look at.")


def test_apply_records_the_missing_payment_once_through_the_use_case(services, world, ledger,
                                                                     tmp_path):
    loan = ledger["loan"]
    path = write(tmp_path, the_statement(loan.number))
    first = run(services.settings, "reconcile", "--apply", str(path))
    assert first.exit_code == 1, first.output  # B and C still need a person
    assert "QA00000004" in first.output and "recorded: payment #" in first.output
    assert f"repayment of {loan.number}" in first.output
    with world.uow() as uow:
        payment = uow.session.scalar(select(Payment).where(
            Payment.transaction_id == "QA00000004"))
        assert (payment.provider, payment.amount, payment.reference, payment.kind) == (
            "mpesa", 100_000, loan.number, PaymentKind.REPAYMENT)
        assert payment.occurred_at == T[5] and payment.phone == "+254711222333"
        count = uow.session.scalar(select(func.count(Payment.id)))
    assert world.loan(loan.number).repaid == 275_000  # A, B and now D
    # After applying, the report shows the ledger as it now is: D matched.
    assert "  matched                           3        Ksh 2,050        Ksh 5,000" in first.output
    assert "  missing from the ledger           0                -                -" in first.output

    second = run(services.settings, "reconcile", "--apply", str(path))
    assert second.exit_code == 1, second.output
    assert "Applied: no payment was missing from the ledger." in second.output
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count(Payment.id))) == count
    assert world.loan(loan.number).repaid == 275_000  # A, B and now D
    check = run(services.settings, "check")
    assert check.exit_code == 0, check.output


def test_apply_leaves_the_statement_clean_and_exits_0(services, world, clock, tmp_path):
    clock.set(START - timedelta(days=1))
    loan = world.disbursed_loan()
    clock.set(T[1])
    world.pay(loan.number, 105_000, transaction_id="QA00000001")
    member = world.member("Baraka Otieno")
    rows = [paybill("QA00000001", T[1], 105_000, loan.number),
            paybill("QA00000008", T[2], 25_000, member.phone),  # a top-up
            paybill("QA00000009", T[3], 12_345, None, online=True),  # no account: suspense
            paybill("QA00000010", T[4], 5_000, "NO-SUCH-LOAN")]
    path = write(tmp_path, rows)
    before = run(services.settings, "reconcile", str(path))
    assert before.exit_code == 1 and "missing from the ledger           3" in before.output
    applied = run(services.settings, "reconcile", "--apply", str(path))
    assert applied.exit_code == 0, applied.output
    assert "3 recorded, 0 already recorded, 0 not applied" in applied.output
    assert "in suspense (no account)" in applied.output
    assert "in suspense (account 'NO-SUCH-LOAN' names no loan or member)" in applied.output
    assert f"wallet top-up for {member.phone}" in applied.output
    assert applied.output.rstrip().endswith("Everything matches.")
    assert world.wallet(member).balance == 25_000
    again = run(services.settings, "reconcile", "--apply", str(path))
    assert again.exit_code == 0 and "no payment was missing" in again.output
    assert run(services.settings, "check").exit_code == 0


def test_apply_records_only_paybill_payments(services, world, clock, tmp_path):
    clock.set(T[1])
    transfer = paybill("QA00000011", T[1], 1_000_000, None)
    transfer.update({"Details": "Transfer of funds from Working Account",
                     "Reason Type": "Organization Transfer", "Other Party Info": ""})
    path = write(tmp_path, [transfer])
    result = run(services.settings, "reconcile", "--apply", str(path))
    assert result.exit_code == 1
    assert "not applied: not a Pay Bill payment: look at it by hand" in result.output
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count(Payment.id))) == 0


def test_json_carries_every_row_for_machines(services, ledger, tmp_path):
    path = write(tmp_path, the_statement(ledger["loan"].number))
    result = CliRunner().invoke(main, ["reconcile", "--json", str(path)], env={
        "DATABASE_URL": services.settings.database.url,
        "REDIS_URL": services.settings.redis.url,
        "HARAMBEE_INSTANCE": services.settings.app.instance_dir})
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["clean"] is False and document["currency"] == "KES"
    assert document["summary"]["matched"] == {"count": 2, "in": {"count": 1, "amount": 105_000},
                                              "out": {"count": 1, "amount": 500_000}}
    assert document["summary"]["missing_from_ledger"]["count"] == 1
    assert [i["receipt"] for i in document["matched"]] == ["QA00000001", "QB00000005"]
    (missing,) = document["missing_from_ledger"]
    assert missing["statement"]["row"] == 10 and missing["statement"]["account"]
    assert missing["statement"]["amount"] == 100_000 and "ledger" not in missing
    (absent,) = document["missing_from_statement"]
    assert absent["ledger"]["kind"] == "payment" and absent["ledger"]["amount"] == 70_000
    (mismatch,) = document["mismatched"]
    assert (mismatch["statement"]["amount"], mismatch["ledger"]["amount"]) == (105_000, 100_000)
    assert document["charges"] == {"count": 1, "amount": 1_500}
    assert document["not_completed"] == 1 and document["unreadable"] == []


def test_unreadable_rows_are_listed_by_number_and_fail_the_run(services, world, clock,
                                                               tmp_path):
    clock.set(T[1])
    world.pay("L9999", 5_000, transaction_id="QA00000012")
    bad = paybill("QA00000013", T[2], 5_000, "L1")
    bad["Paid In"] = "5,00.00"
    path = write(tmp_path, [paybill("QA00000012", T[1], 5_000, "L9999"), bad])
    result = run(services.settings, "reconcile", str(path))
    assert result.exit_code == 1, result.output
    assert 'row 7: the Paid In amount "5,00.00" is not an amount' in result.output
    assert "matched                           1" in result.output


@pytest.mark.parametrize(("content", "message"), [
    (None, "No such file or directory"),
    (b"name,phone\nAnn,0712345678\n", "not an M-Pesa organisation statement"),
    (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", "the file is not text"),
    (b"Receipt No.,Completion Time,Details,Transaction Status,Paid In\n",
     "no Withdrawn column"),
], ids=["absent", "not a statement", "spreadsheet", "column missing"])
def test_a_file_that_cannot_be_read_exits_2_in_one_line(services, tmp_path, content, message):
    path = tmp_path / "statement.csv"
    if content is not None:
        path.write_bytes(content)
    result = run(services.settings, "reconcile", str(path))
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"harambee reconcile: cannot read {path}: ")
    assert message in result.stderr


def test_a_directory_is_not_a_statement(services, tmp_path):
    result = run(services.settings, "reconcile", str(tmp_path))
    assert result.exit_code == 2 and "Traceback" not in result.output

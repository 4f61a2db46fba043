"""A paybill confirmation is stored at the door and recorded in the ledger behind: the
hook answers Daraja once the confirmation is kept, a job on the `payments` queue records
it exactly once, a replay before or after changes nothing, a confirmation whose job was
lost (Redis down) is recorded by the `confirmations` duty, and `harambee check` flags
one left unrecorded too long."""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from click.testing import CliRunner
from rq import Queue
from sqlalchemy import func, select

from core import checks, confirmations, repayments
from core.models import Account, Confirmation, OutboxMessage, Payment, PaymentKind
from runtime.jobs import OUTBOUND, PAYMENTS, SEND_JOB
from runtime.redis import RedisHandle, client_for
from runtime.services import Services
from tests.support import paybill, run_worker
from web.app import create_app
from workers import duties, jobs


def confirmation(world, trans_id: str) -> Confirmation:
    with world.uow() as uow:
        row = uow.session.scalar(select(Confirmation).where(Confirmation.trans_id == trans_id))
        assert row is not None
        return row


def books(world) -> tuple:
    """Everything a confirmation may change, besides the confirmation itself."""
    with world.uow() as uow:
        s = uow.session
        return (sorted(s.execute(select(Account.code, Account.debits_posted,
                                        Account.credits_posted)).tuples()),
                s.scalar(select(func.count()).select_from(Payment)),
                s.scalar(select(func.count()).select_from(OutboxMessage)),
                s.scalar(select(func.count()).select_from(Confirmation)))


def queued(services, name: str = PAYMENTS) -> int:
    return Queue(name, connection=services.redis.client).count


def dead_redis(services: Services) -> Services:
    """These services with Redis gone: nothing listens on the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    return Services(settings=services.settings, db=services.db,
                    redis=RedisHandle(client_for(url), url), clock=services.clock)


def test_a_confirmation_is_stored_then_recorded_exactly_once_by_its_job(client, world,
                                                                         services, clock):
    member = world.member("Juma Hassan", phone="+254711000001")
    answer = paybill(client, trans_id="SBKSTORE01", amount=50_000, account="0711000001",
                     when=clock())
    assert answer.status_code == 200 and answer.json["ResultCode"] == "0"
    stored = confirmation(world, "SBKSTORE01")
    assert (stored.amount, stored.bill_ref, stored.recorded_at) == (50_000, "0711000001", None)
    assert world.wallet(member).balance == 0  # not in the ledger yet
    assert queued(services) == 1

    clock.advance(seconds=2)
    run_worker(services)
    recorded = confirmation(world, "SBKSTORE01")
    assert recorded.recorded_at == clock() and recorded.attempts == 1
    with world.uow() as uow:
        payment = uow.session.get(Payment, recorded.payment_id)
        assert (payment.transaction_id, payment.kind, payment.amount) == (
            "SBKSTORE01", PaymentKind.TOPUP, 50_000)
    assert world.wallet(member).balance == 50_000
    settled = books(world)
    # the job again (a redelivery, the sweep's): nothing more
    assert confirmations.record(services.uow(), recorded.id, clock()) == "done"
    assert books(world) == settled
    with world.uow() as uow:
        assert checks.check(uow, clock()) == []


def test_a_replay_before_and_after_recording_changes_nothing(client, world, services, clock):
    loan = world.disbursed_loan(amount=100_000)
    pay = dict(trans_id="SBKREPLAY1", amount=30_000, account=loan.number, when=clock())
    assert paybill(client, **pay).status_code == 200
    stored = books(world)
    assert paybill(client, **pay).status_code == 200  # before it is recorded
    assert books(world) == stored and queued(services) == 1  # no second job either
    run_worker(services)
    recorded = books(world)
    assert world.loan(loan.number).repaid == 30_000
    for _ in range(3):  # after
        assert paybill(client, **pay).status_code == 200
    run_worker(services)
    assert books(world) == recorded and world.loan(loan.number).repaid == 30_000
    # the same TransID with another amount is a conflict, before and after: nothing moves
    assert paybill(client, **{**pay, "amount": 31_000}).status_code == 409
    assert books(world) == recorded


def test_redis_down_at_the_door_still_stores_and_the_duty_records_it(services, world, clock):
    member = world.member("Juma Hassan", phone="+254711000001")
    down = dead_redis(services)
    answer = paybill(create_app(services=down).test_client(), trans_id="SBKNORED01",
                     amount=20_000, account=member.phone, when=clock())
    assert answer.status_code == 200 and answer.json["ResultCode"] == "0"
    assert confirmation(world, "SBKNORED01").recorded_at is None
    assert queued(services) == 0  # the job was lost with Redis
    run_worker(services)
    assert world.wallet(member).balance == 0

    clock.advance(seconds=5)  # too young for the sweep: its job may still be coming
    assert duties.record_confirmations(services, clock()) == 0
    clock.advance(minutes=1)
    assert duties.record_confirmations(services, clock()) == 1
    assert duties.record_confirmations(services, clock()) == 0  # its job is queued now
    run_worker(services)
    assert world.wallet(member).balance == 20_000
    assert confirmation(world, "SBKNORED01").recorded_at == clock()
    assert duties.record_confirmations(services, clock()) == 0


def test_with_redis_still_down_the_duty_records_from_where_it_runs(services, world, clock):
    member = world.member("Juma Hassan", phone="+254711000001")
    down = dead_redis(services)
    client = create_app(services=down).test_client()
    for n in range(3):
        assert paybill(client, trans_id=f"SBKNORED1{n}", amount=10_000, account=member.phone,
                       when=clock()).status_code == 200
    clock.advance(minutes=2)
    report = duties.tick(down, clock(), ["confirmations"])
    assert report.done == {"confirmations": 3} and report.failed == {}
    assert world.wallet(member).balance == 30_000


def test_check_flags_a_confirmation_left_unrecorded_too_long(services, world, clock):
    member = world.member("Juma Hassan", phone="+254711000001")
    stored = confirmations.store(services.uow(), confirmations.Confirmed(
        provider="mpesa", trans_id="SBKSTALE01", amount=10_000, bill_ref=member.phone,
        phone=None, occurred_at=clock()), clock())
    services.redis.client.flushdb()  # its job lost
    within = services.settings.mpesa.record_within_seconds
    with world.uow() as uow:
        assert checks.check(uow, clock() + timedelta(seconds=within - 1)) == []
    with world.uow() as uow:
        [late] = checks.check(uow, clock() + timedelta(seconds=within + 1))
    assert late.invariant == 6 and "SBKSTALE01" in late.detail and "not recorded" in late.detail
    assert confirmations.waiting(services.uow()).count == 1
    # the sweep's next tick puts it in the ledger and the finding goes
    clock.advance(seconds=within + 1)
    duties.record_confirmations(services, clock())
    run_worker(services)
    assert confirmation(world, "SBKSTALE01").payment_id is not None
    with world.uow() as uow:
        assert checks.check(uow, clock()) == []
    assert stored.created


@pytest.mark.corrupts_ledger
def test_a_receipt_recorded_by_another_door_with_other_details_waits_for_a_person(
        client, world, services, clock):
    member = world.member("Juma Hassan", phone="+254711000001")
    # the statement's --apply (or a prompt's result) recorded the receipt first, as 100
    repayments.record_payment(services.uow(), provider="mpesa", transaction_id="SBKCLASH1",
                              phone=None, amount=10_000, currency="KES",
                              reference=member.phone, occurred_at=clock(), now=clock())
    assert paybill(client, trans_id="SBKCLASH1", amount=20_000, account=member.phone,
                   when=clock()).status_code == 200  # the money has moved: acknowledged
    run_worker(services)
    clash = confirmation(world, "SBKCLASH1")
    assert (clash.refusal, clash.recorded_at) == ("payment.replayed_differently", None)
    assert world.wallet(member).balance == 10_000  # counted once, as first recorded
    clock.advance(minutes=2)
    assert duties.record_confirmations(services, clock()) == 0  # no retrying a refusal
    with world.uow() as uow:
        [found] = checks.check(uow, clock())
    assert found.invariant == 6 and "refused: payment.replayed_differently" in found.detail


def test_a_receipt_recorded_by_another_door_first_is_the_same_payment(client, world,
                                                                       services, clock):
    """Stored at the C2B door, then recorded by the statement's --apply before the job
    ran: the job finds the receipt recorded and counts nothing twice."""
    loan = world.disbursed_loan(amount=100_000)
    assert paybill(client, trans_id="SBKTWICE1", amount=40_000, account=loan.number,
                   when=clock()).status_code == 200
    first = repayments.record_payment(
        services.uow(), provider="mpesa", transaction_id="SBKTWICE1", phone=None,
        amount=40_000, currency="KES", reference=loan.number, occurred_at=clock(), now=clock())
    run_worker(services)
    assert confirmation(world, "SBKTWICE1").payment_id == first.payment.id
    assert world.loan(loan.number).repaid == 40_000
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Payment).where(
            Payment.transaction_id == "SBKTWICE1")) == 1


def test_a_worker_may_keep_to_the_payments_queue(client, world, services, clock):
    from cli import main

    member = world.member("Juma Hassan", phone="+254711000001")
    assert paybill(client, trans_id="SBKQUEUE1", amount=10_000, account=member.phone,
                   when=clock()).status_code == 200
    Queue(OUTBOUND, connection=services.redis.client).enqueue(SEND_JOB, [])
    sms_jobs = queued(services, OUTBOUND)
    jobs.bind(services)
    try:
        ran = CliRunner().invoke(main, ["worker", "--queue", PAYMENTS, "--burst"])
        refused = CliRunner().invoke(main, ["worker", "--queue", "payment", "--burst"])
    finally:
        jobs.bind(None)
    assert ran.exit_code == 0, ran.output
    assert world.wallet(member).balance == 10_000
    # the SMS jobs wait, with one more: the top-up's receipt, written as it was recorded
    assert (queued(services), queued(services, OUTBOUND)) == (0, sms_jobs + 1)
    assert refused.exit_code == 2 and "payment" in refused.output


def test_a_bare_unit_of_work_commits_hands_over_and_joins_as_any(services, clock):
    """`UnitOfWork.bare` (the door's transaction without an ORM session): rolled back
    unless committed, its follow-ups handed over only after commit, and joined when
    entered inside an open unit."""
    from sqlalchemy import text

    from core.db import UnitOfWork

    def count() -> int:
        with services.db.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM confirmations")).scalar_one()

    def insert(uow: UnitOfWork, trans_id: str) -> None:
        uow.connection.execute(confirmations._STORE, {
            "provider": "mpesa", "trans_id": trans_id, "amount": 100, "bill_ref": "x",
            "phone": None, "occurred_at": clock(), "received_at": clock(), "attempts": 0})

    handed: list = []
    uow = UnitOfWork(services.db, after_commit=handed.append)
    with uow.bare():
        insert(uow, "BARE1")
        uow.follow_up("noted", 1)
    assert (count(), handed) == (0, [])  # not committed: nothing stays, nothing goes
    with uow.bare():
        insert(uow, "BARE2")
        uow.follow_up("noted", 2)
        uow.commit()
    assert count() == 1 and [done.follow_ups for done in handed] == [{"noted": [2]}]
    with uow:
        with uow.bare():
            insert(uow, "BARE3")
            uow.commit()  # joined: the outer unit commits
        assert uow.session.scalar(select(func.count()).select_from(Confirmation)) == 2
    assert count() == 1  # the outer unit never committed

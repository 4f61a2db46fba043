"""Repayment reminders through `tick`: one of each kind per installment, ever; signed by
the field agent; held in quiet hours until the morning."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from core.models import OutboxMessage, OutboxStatus
from workers import duties

# world.disbursed_loan() at START (Mon 2 March 2026, 12:00 in Nairobi): installments are
# due on 9, 16, 23 and 30 March.


def nairobi(day: int, hour: int, minute: int = 0) -> datetime:
    """A March 2026 moment given in Nairobi time (UTC+3)."""
    return datetime(2026, 3, day, hour - 3, minute, tzinfo=UTC)


def reminders(world) -> list[OutboxMessage]:
    with world.uow() as uow:
        return list(uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.key.like("reminder:%")).order_by(OutboxMessage.id)))


def tick(services, moment: datetime) -> None:
    report = duties.tick(services, moment, ["mark_arrears", "reminders"])
    assert report.failed == {}


def test_each_kind_once_per_installment_however_often_tick_runs(world, services):
    loan = world.disbursed_loan(lenders=1)
    first, second = loan.installments[0].id, loan.installments[1].id
    for day in (5, 6, 6, 7, 9, 9, 10, 12, 13, 16, 16):
        tick(services, nairobi(day, 9))
        tick(services, nairobi(day, 15))
    keys = [r.key for r in reminders(world)]
    assert keys == [f"reminder:{first}:before", f"reminder:{first}:due",
                    f"reminder:{first}:late1", f"reminder:{first}:late3",
                    f"reminder:{second}:before", f"reminder:{first}:late7",
                    f"reminder:{second}:due"]
    texts = {r.key.split(":")[-1]: r.text for r in reminders(world) if str(first) in r.key}
    assert texts["before"] == ("Wanjiru, Ksh 787 for loan L1001 is due on 09/03/2026. "
                               "Pay to paybill 247247, account L1001. - Grace, your Harambee "
                               "agent")
    assert "is due today" in texts["due"] and "was due on 09/03/2026" in texts["late3"]


def test_a_paid_installment_gets_no_more_reminders(world, services, clock):
    loan = world.disbursed_loan(lenders=1)
    tick(services, nairobi(6, 10))
    clock.set(nairobi(8, 10))
    world.pay(loan.number, loan.installments[0].amount)
    for day in (9, 10, 12, 16):
        tick(services, nairobi(day, 10))
    first = loan.installments[0].id
    assert [r.key for r in reminders(world) if f":{first}:" in r.key] == [
        f"reminder:{first}:before"]


def test_a_missed_day_is_caught_up_once_but_not_older(world, services):
    loan = world.disbursed_loan(lenders=1)
    first = loan.installments[0].id
    tick(services, nairobi(7, 10))  # the 6th was missed: "before" still goes on the 7th
    tick(services, nairobi(11, 10))  # the 10th (1 day late) was missed too: caught up
    tick(services, nairobi(15, 10))  # 6 days late: 3-day reminder too old, 7-day not yet
    assert [r.key for r in reminders(world)] == [f"reminder:{first}:before",
                                                 f"reminder:{first}:late1"]


def test_quiet_hours_hold_reminders_until_the_morning(world, services, clock):
    world.disbursed_loan(lenders=1)
    evening = nairobi(6, 21, 30)
    clock.set(evening)
    tick(services, evening)
    [held] = reminders(world)
    assert held.not_before == nairobi(7, 7)
    assert duties.send_outbox(services, [held.id]).claimed == 0
    clock.set(nairobi(7, 6, 59))
    duties.sweep_outbox(services, clock(), inline_if_redis_down=False)
    assert duties.send_outbox(services, [held.id]).claimed == 0
    clock.set(nairobi(7, 7))
    assert duties.send_outbox(services, [held.id]).sent == 1
    with world.uow() as uow:
        assert uow.session.get(OutboxMessage, held.id).status == OutboxStatus.SENT


def test_a_member_without_an_agent_gets_a_plain_signature(world, services):
    borrower = world.member("Kamau Solo", roles="borrower", verified=False)
    with world.uow() as uow:
        from core.models import Member, MemberStatus

        uow.session.get(Member, borrower.id).status = MemberStatus.VERIFIED
        uow.commit()
    world.disbursed_loan(lenders=1, borrower=borrower)
    tick(services, nairobi(9, 10))
    [due] = reminders(world)
    assert due.text.startswith("Kamau, ") and due.text.endswith("- Harambee")


@pytest.mark.postgres
def test_overlapping_runs_on_postgres_write_each_reminder_once(world, services):
    world.disbursed_loan(lenders=1)
    with services.db.engine.connect() as other:
        import zlib

        other.execute(text("SELECT pg_advisory_lock(:k)"),
                      {"k": zlib.crc32(b"harambee:reminders")})
        assert duties.send_reminders(services, nairobi(9, 10)) == 0  # the other run holds it
        other.execute(text("SELECT pg_advisory_unlock_all()"))
        other.commit()
    assert duties.send_reminders(services, nairobi(9, 10)) == 1
    assert duties.send_reminders(services, nairobi(9, 11)) == 0

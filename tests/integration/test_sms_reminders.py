"""Repayment reminders through `tick`: one SMS per borrower and run, with what they owe
now and the next date; one for each kind per installment, ever; signed by the field
agent; held in quiet hours until the morning."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from core.models import Member, OutboxMessage, OutboxStatus
from tests.support import all_at_once, run_worker
from workers import duties

# world.disbursed_loan() at START (Mon 2 March 2026, 12:00 in Nairobi): installments of
# Ksh 787 (the last Ksh 789) are due on 9, 16, 23 and 30 March.


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


def test_one_reminder_a_day_at_most_and_each_kind_once_however_often_tick_runs(world,
                                                                             services):
    loan = world.disbursed_loan(lenders=1)
    for day in (5, 6, 6, 7, 9, 9, 10, 12, 13, 16, 16):
        tick(services, nairobi(day, 9))
        tick(services, nairobi(day, 15))
    # the 6th: the first is 3 days off; 7th: its grace day, sent already; 9th: due;
    # 10th, 12th: 1 and 3 days late; 13th: the second is 3 days off (the first's 3-day
    # grace day, sent already); 16th: the first 7 days late and the second due
    assert [(r.key, r.template) for r in reminders(world)] == [
        (f"reminder:{loan.number}:2026-03-06", "sms.reminder_before"),
        (f"reminder:{loan.number}:2026-03-09", "sms.reminder_due"),
        (f"reminder:{loan.number}:2026-03-10", "sms.reminder_late_next"),
        (f"reminder:{loan.number}:2026-03-12", "sms.reminder_late_next"),
        (f"reminder:{loan.number}:2026-03-13", "sms.reminder_late_next"),
        (f"reminder:{loan.number}:2026-03-16", "sms.reminder_late_next")]
    texts = [r.text for r in reminders(world)]
    assert texts[0] == ("Wanjiru, Ksh 787 for loan L1001 is due on 09/03/2026. Pay to paybill "
                        "247247, account L1001. - Grace, your Harambee agent")
    assert texts[1].startswith("Wanjiru, Ksh 787 for loan L1001 is due today.")
    assert texts[2] == ("Wanjiru, a payment on loan L1001 is late: you owe Ksh 787. Pay to "
                        "paybill 247247, account L1001. Next due 16/03/2026. - Grace, your "
                        "Harambee agent")
    assert "you owe Ksh 1,574." in texts[5] and "Next due 23/03/2026." in texts[5]


def test_two_late_installments_make_one_sms_with_their_sum(world, services, clock):
    loan = world.disbursed_loan(lenders=1)
    clock.set(nairobi(17, 10))  # both the 9th's and the 16th's are unpaid
    tick(services, clock())
    [sms] = reminders(world)
    assert sms.text == ("Wanjiru, a payment on loan L1001 is late: you owe Ksh 1,574. Pay to "
                        "paybill 247247, account L1001. Next due 23/03/2026. - Grace, your "
                        "Harambee agent")
    assert sum(i.amount for i in loan.installments[:2]) == 157_400
    tick(services, nairobi(17, 16))  # a second run the same day sends nothing
    tick(services, nairobi(18, 10))  # nor the next, a grace day of both
    assert [r.id for r in reminders(world)] == [sms.id]


def test_one_late_and_one_upcoming_make_one_sms_through_the_gateway(world, at_services,
                                                                     fake_at, clock):
    loan = world.disbursed_loan(lenders=1)
    borrower = world.loan(loan.number).borrower
    clock.set(nairobi(13, 10))
    tick(at_services, clock())  # the 9th's is 4 days late; the 16th's 3 days off
    run_worker(at_services)
    late = [m for m in fake_at.delivered_to(borrower.phone) if "L1001" in m and "late" in m]
    assert late == ["Wanjiru, a payment on loan L1001 is late: you owe Ksh 787. Pay to "
                    "paybill 247247, account L1001. Next due 16/03/2026. - Grace, your "
                    "Harambee agent"]
    clock.set(nairobi(13, 15))
    tick(at_services, clock())
    run_worker(at_services)
    assert [m for m in fake_at.delivered_to(borrower.phone) if "paybill" in m] == late


def test_a_reminder_in_swahili(world, services):
    borrower = world.member("Wanjiru Kamau", roles="borrower", language="sw")
    world.disbursed_loan(lenders=1, borrower=borrower)
    tick(services, nairobi(6, 10))
    tick(services, nairobi(17, 10))
    assert [r.text for r in reminders(world)] == [
        "Wanjiru, malipo ya Ksh 787 ya mkopo L1001 yanatakiwa tarehe 09/03/2026. Lipa kwa "
        "paybill 247247, akaunti L1001. - Grace, wakala wa Harambee",
        "Wanjiru, umechelewa kulipa mkopo L1001: unadaiwa Ksh 1,574. Lipa paybill 247247, "
        "akaunti L1001. Malipo yajayo: 23/03/2026. - Grace, wakala wa Harambee"]


def test_the_last_installment_late_has_no_next_date(world, services, clock):
    loan = world.disbursed_loan(lenders=1)
    clock.set(nairobi(20, 10))
    world.pay(loan.number, sum(i.amount for i in loan.installments[:3]))
    tick(services, nairobi(31, 10))
    [sms] = reminders(world)
    assert sms.text == ("Wanjiru, a payment on loan L1001 is late: you owe Ksh 789. Please pay "
                        "now: paybill 247247, account L1001. - Grace, your Harambee agent")


def test_runs_at_once_write_one_reminder(world, services):
    world.disbursed_loan(lenders=1)
    results = all_at_once([lambda: duties.send_reminders(services, nairobi(9, 10))] * 3)
    assert sorted(results) == [0, 0, 1]
    assert len(reminders(world)) == 1


def test_a_day_missed_is_caught_up_under_its_own_day_once(world, services):
    loan = world.disbursed_loan(lenders=1)
    tick(services, nairobi(10, 10))  # the 9th's due-day run was missed: 1 day late now
    tick(services, nairobi(11, 10))  # its grace day: nothing more
    tick(services, nairobi(12, 10))  # 3 days late: a new reminder
    assert [r.key for r in reminders(world)] == [f"reminder:{loan.number}:2026-03-10",
                                                 f"reminder:{loan.number}:2026-03-12"]


def test_reminders_carried_yesterday_are_not_sent_again_after_a_payment(world, services,
                                                                         clock):
    loan = world.disbursed_loan(lenders=1)
    tick(services, nairobi(13, 10))  # the 9th's 4 days late (its 3-day reminder's grace
    # day) and the 16th's 3 days off: one SMS, keyed the 13th
    clock.set(nairobi(14, 8))
    world.pay(loan.number, loan.installments[0].amount)  # the late one paid
    tick(services, nairobi(14, 10))  # the 16th's "before", on its grace day: sent already
    assert [r.key for r in reminders(world)] == [f"reminder:{loan.number}:2026-03-13"]


def test_a_paid_installment_gets_no_more_reminders(world, services, clock):
    loan = world.disbursed_loan(lenders=1)
    tick(services, nairobi(6, 10))
    clock.set(nairobi(8, 10))
    world.pay(loan.number, loan.installments[0].amount)
    for day in (9, 10, 12):
        tick(services, nairobi(day, 10))
    assert [r.key for r in reminders(world)] == [f"reminder:{loan.number}:2026-03-06"]


def test_a_missed_day_is_caught_up_once_but_not_older(world, services):
    loan = world.disbursed_loan(lenders=1)
    tick(services, nairobi(7, 10))  # the 6th was missed: "before" still goes on the 7th
    tick(services, nairobi(11, 10))  # the 10th (1 day late) was missed too: caught up
    tick(services, nairobi(15, 10))  # 6 days late: 3-day reminder too old, 7-day not yet
    # each keyed by the day it was due: a run on that day would have written the same
    assert [r.key for r in reminders(world)] == [f"reminder:{loan.number}:2026-03-06",
                                                 f"reminder:{loan.number}:2026-03-10"]


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
    tick(services, nairobi(7, 7, 15))  # the morning's runs find the morning's reminder
    assert [r.id for r in reminders(world)] == [held.id]


def test_a_reminder_held_overnight_says_what_is_true_in_the_morning(world, services):
    loan = world.disbursed_loan(lenders=1)
    tick(services, nairobi(9, 12))  # due today
    tick(services, nairobi(9, 21, 30))  # quiet: the 10th's reminder, held until 07:00
    tick(services, nairobi(10, 7, 15))
    due, late = reminders(world)
    assert (due.template, late.template) == ("sms.reminder_due", "sms.reminder_late_next")
    assert late.key == f"reminder:{loan.number}:2026-03-10"
    assert late.not_before == nairobi(10, 7)


def test_a_member_without_an_agent_gets_a_plain_signature(world, services):
    borrower = world.member("Kamau Solo", roles="borrower", verified=False)
    with world.uow() as uow:
        from core.models import MemberStatus

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

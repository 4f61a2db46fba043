"""Repayment reminders: before the due date, on the day, and after it while unpaid.

At most one reminder of each kind per installment, ever: the outbox key
`reminder:<installment id>:<kind>` makes a second run write nothing. A run missed by a
day is caught up (the latest kind whose day has come, within a day's grace). In quiet
hours the rows are written held until the morning (`not_before`).

Built for a busy day: installments are read in keyset batches as plain tuples, and
the outbox rows bulk-inserted, so 100,000 reminders never become 100,000 ORM objects.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import aliased

from core import outbox
from core.config import Settings
from core.db import UnitOfWork
from core.messages import format_date, text
from core.models import BEING_REPAID, Installment, Loan, Member, Purpose

GRACE_DAYS = 1
BATCH = 5000


@dataclass(frozen=True)
class ReminderRun:
    """What one run found and wrote; `held_until` is set in quiet hours; `skipped` when
    another run was in progress, so this one wrote nothing."""

    due: int
    queued: int
    held_until: datetime | None
    skipped: bool = False


def kinds(settings: Settings) -> list[tuple[str, int]]:
    """(kind, days after the due date) in order: `before` is negative, `due` is 0."""
    late = [(f"late{n}", n) for n in sorted(set(settings.reminders.days_late)) if n > 0]
    return [("before", -settings.reminders.days_before), ("due", 0), *late]


def kind_for(days_after_due: int, schedule: list[tuple[str, int]]) -> tuple[str, int] | None:
    """The reminder an installment this many days from its due date gets today: the
    latest one whose day has come, if that was at most GRACE_DAYS ago."""
    chosen = None
    for name, offset in schedule:
        if offset <= days_after_due <= offset + GRACE_DAYS:
            chosen = (name, offset)
    return chosen


def quiet_until(settings: Settings, now: datetime) -> datetime | None:
    """The end of the quiet hours `now` falls in (UTC), or None outside them."""
    start, end = settings.reminders.quiet_start, settings.reminders.quiet_end
    local = now.astimezone(settings.zone)
    moment = local.time()
    if start == end:
        return None
    if start > end:  # spans midnight, e.g. 20:00-07:00
        if moment >= start:
            day = local.date() + timedelta(days=1)
        elif moment < end:
            day = local.date()
        else:
            return None
    elif start <= moment < end:
        day = local.date()
    else:
        return None
    return _at(day, end, settings).astimezone(UTC)


def _at(day: date, at: time, settings: Settings) -> datetime:
    return datetime.combine(day, at, tzinfo=settings.zone)


def _rows(uow: UnitOfWork, dates: list[date]) -> Iterator[list[tuple]]:
    """Unpaid installments due on `dates` of loans being repaid, in batches of tuples."""
    agent = aliased(Member)
    base = (select(Installment.id, Installment.due_on, Installment.amount - Installment.paid,
                   Loan.number, Member.id, Member.phone, Member.language, Member.name,
                   agent.name)
            .join(Loan, Loan.id == Installment.loan_id)
            .join(Member, Member.id == Loan.borrower_id)
            .outerjoin(agent, agent.id == Member.agent_id)
            .where(Installment.due_on.in_(dates), Installment.paid < Installment.amount,
                   Loan.status.in_(BEING_REPAID))
            .order_by(Installment.id).limit(BATCH))
    last = 0
    while True:
        batch = [tuple(row) for row in uow.session.execute(base.where(Installment.id > last))]
        if not batch:
            return
        yield batch
        last = batch[-1][0]


def queue_reminders(uow: UnitOfWork, now: datetime) -> ReminderRun:
    """Write today's reminders to the outbox: one run at a time (a second run while one
    is in progress writes nothing)."""
    settings = uow.settings
    with uow:
        if not uow.exclusive("reminders"):
            return ReminderRun(due=0, queued=0, held_until=None, skipped=True)
        today = now.astimezone(settings.zone).date()
        schedule = kinds(settings)
        dates = sorted({today - timedelta(days=offset + grace)
                        for _, offset in schedule for grace in range(GRACE_DAYS + 1)})
        held = quiet_until(settings, now)
        paybill = settings.payments.paybill
        signatures: dict[tuple[str, str | None], str] = {}
        found = queued = 0
        for batch in _rows(uow, dates):
            messages = []
            for inst_id, due_on, left, loan_no, member_id, phone, lang, name, agent in batch:
                chosen = kind_for((today - due_on).days, schedule)
                if chosen is None:
                    continue
                kind, _ = chosen
                sign_key = (lang, agent)
                if sign_key not in signatures:
                    signatures[sign_key] = (text("sms.signed_agent", lang, agent=agent.split()[0])
                                            if agent else text("sms.signed", lang))
                template = ("sms.reminder_before" if kind == "before" else
                            "sms.reminder_due" if kind == "due" else "sms.reminder_late")
                found += 1
                messages.append(outbox.Sms(
                    key=f"reminder:{inst_id}:{kind}", phone=phone, language=lang,
                    template=template, purpose=Purpose.REMINDER, member_id=member_id,
                    not_before=held,
                    params={"name": name.split()[0] if name.strip() else name,
                            "amount": settings.fmt(left), "loan": loan_no,
                            "due": format_date(due_on), "paybill": paybill,
                            "sign": signatures[sign_key]}))
            queued += len(outbox.queue(uow, messages, now))
        uow.commit()
        return ReminderRun(due=found, queued=queued, held_until=held)

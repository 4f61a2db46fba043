"""Repayment reminders: before the due date, on the day, and after it while unpaid.

The schedule is per installment (`kinds`: `before`, `due`, `late<n>`, each on its day:
the due date plus the kind's offset), but a borrower gets one SMS per run, however many
installments call for one: what they owe now (the overdue and today's together, or
the installment about to fall due) and the next date. Two late installments make one
"you owe Ksh 2,100", not two "Ksh 1,050 was due".

At most one reminder for each installment and kind, ever, with no read before the
write: a loan's reminder is keyed `reminder:<loan number>:<day>`, the day being the
latest day among the installments' reminders it carries, and a key already written is
skipped (`outbox.queue`). A second run the same day finds the same reminders due, so
the same key; a run missed by a day is caught up (the latest kind whose day has come,
within a day's grace) under the missed day's key, which yesterday's run wrote if it
ran. Only a reminder of a new day makes a new SMS, and it says where the whole loan
stands. (One case is beyond a key: after a whole day with no run, a payment between two
runs the next day can leave a later run catching up a reminder an earlier one carried.)
In quiet hours the reminders are the morning's: worked out as of the day they
will be read and held until then (`not_before`), so the morning's runs find them
written.

Built for a busy day: loans and installments are read in keyset batches as plain
tuples, and the outbox rows bulk-inserted, so 100,000 reminders never become 100,000
ORM objects.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import aliased

from core import outbox
from core.config import Settings
from core.db import UnitOfWork
from core.messages import format_date, text
from core.models import BEING_REPAID, Installment, Loan, Member, Purpose

GRACE_DAYS = 1
BATCH = 5000
T = TypeVar("T")


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


def _loans(uow: UnitOfWork, dates: list[date]) -> Iterator[list[tuple]]:
    """Loans being repaid with an unpaid installment due on one of `dates`, with their
    borrower and the borrower's agent, in keyset batches of tuples."""
    agent = aliased(Member)
    due = (select(Installment.id)
           .where(Installment.loan_id == Loan.id, Installment.due_on.in_(dates),
                  Installment.paid < Installment.amount).exists())
    base = (select(Loan.id, Loan.number, Member.id, Member.phone, Member.language,
                   Member.name, agent.name)
            .join(Member, Member.id == Loan.borrower_id)
            .outerjoin(agent, agent.id == Member.agent_id)
            .where(Loan.status.in_(BEING_REPAID), due)
            .order_by(Loan.id).limit(BATCH))
    last = 0
    while True:
        batch = [tuple(row) for row in uow.session.execute(base.where(Loan.id > last))]
        if not batch:
            return
        yield batch
        last = batch[-1][0]


def _chunks(items: Sequence[T], size: int = 1000) -> Iterator[Sequence[T]]:
    """`IN` lists of at most `size` values (SQLite caps a statement's parameters)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _unpaid(uow: UnitOfWork, loan_ids: list[int]) -> dict[int, list[tuple[int, date, int]]]:
    """Each loan's unpaid installments, oldest first: (id, due date, left to pay)."""
    found: dict[int, list[tuple[int, date, int]]] = defaultdict(list)
    for ids in _chunks(loan_ids):
        for loan_id, inst_id, due_on, left in uow.session.execute(
                select(Installment.loan_id, Installment.id, Installment.due_on,
                       Installment.amount - Installment.paid)
                .where(Installment.loan_id.in_(ids), Installment.paid < Installment.amount)
                .order_by(Installment.loan_id, Installment.due_on, Installment.id)):
            found[loan_id].append((inst_id, due_on, left))
    return found


def reminder_key(loan_number: str, day: date) -> str:
    """The outbox key of a loan's reminder carrying the reminders of `day` (local)."""
    return f"reminder:{loan_number}:{day.isoformat()}"


@dataclass(frozen=True)
class _Wording:
    """What one reminder says: its template and the values that differ by case."""

    template: str
    amount: int
    due: date
    next_due: date | None = None


def _wording(unpaid: list[tuple[int, date, int]], today: date) -> _Wording:
    """Late: the overdue and today's together, and the next date after today. Due
    today: today's. Otherwise: the installment about to fall due."""
    owed = sum(left for _, due_on, left in unpaid if due_on <= today)
    later = [due_on for _, due_on, _ in unpaid if due_on > today]
    oldest = unpaid[0][1]
    if oldest < today:
        return _Wording("sms.reminder_late_next" if later else "sms.reminder_late", owed,
                        oldest, later[0] if later else None)
    if owed:
        return _Wording("sms.reminder_due", owed, today)
    return _Wording("sms.reminder_before",
                    sum(left for _, due_on, left in unpaid if due_on == later[0]), later[0])


def queue_reminders(uow: UnitOfWork, now: datetime) -> ReminderRun:
    """Write today's reminders to the outbox, one per borrower whose installments call
    for one: one run at a time (a second run while one is in progress writes nothing)."""
    settings = uow.settings
    with uow:
        if not uow.exclusive("reminders"):
            return ReminderRun(due=0, queued=0, held_until=None, skipped=True)
        held = quiet_until(settings, now)
        today = (held or now).astimezone(settings.zone).date()
        schedule = kinds(settings)
        dates = sorted({today - timedelta(days=offset + grace)
                        for _, offset in schedule for grace in range(GRACE_DAYS + 1)})
        paybill = settings.payments.paybill
        signatures: dict[tuple[str, str | None], str] = {}
        found = queued = 0
        for batch in _loans(uow, dates):
            unpaid = _unpaid(uow, [row[0] for row in batch])
            messages = []
            for loan_id, loan_no, member_id, phone, lang, name, agent in batch:
                days = [due_on + timedelta(days=chosen[1]) for _, due_on, _ in unpaid[loan_id]
                        if (chosen := kind_for((today - due_on).days, schedule)) is not None]
                if not days:  # paid since the loan was read
                    continue
                sign_key = (lang, agent)
                if sign_key not in signatures:
                    signatures[sign_key] = (text("sms.signed_agent", lang, agent=agent.split()[0])
                                            if agent else text("sms.signed", lang))
                says = _wording(unpaid[loan_id], today)
                found += 1
                messages.append(outbox.Sms(
                    key=reminder_key(loan_no, max(days)), phone=phone, language=lang,
                    template=says.template, purpose=Purpose.REMINDER, member_id=member_id,
                    not_before=held,
                    params={"name": name.split()[0] if name.strip() else name,
                            "amount": settings.fmt(says.amount), "loan": loan_no,
                            "due": format_date(says.due),
                            "next_due": format_date(says.next_due) if says.next_due else "",
                            "paybill": paybill, "sign": signatures[sign_key]}))
            queued += len(outbox.queue(uow, messages, now))
        uow.commit()
        return ReminderRun(due=found, queued=queued, held_until=held)

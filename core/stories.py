"""Borrowers' stories, and lenders' thanks.

A borrower who has repaid a loan may send a few words about what it did for them
(`STORY ...`; the SMS after their last payment invites them). The story is about
their latest repaid loan and waits for an operator: no one else reads it until it is
approved (`approve`, called by `harambee stories approve` and by the operator
console, which passes its operator as `actor`: the decision is audited in the same
transaction). Once approved it goes by SMS:
- to each lender of that loan (a notice, inviting `THANKS <loan>`);
- to members who asked for tips (`TIPS ON`): stories are the same kind of optional
  message, so STOP or TIPS OFF stops them too (`Purpose.TIP`). There may be many:
  they are written after the approval commits, a batch per transaction, by a job
  (`share_with_members`), with the `share_stories` duty behind it;
and the borrower is told. All of these wait out the quiet hours.

A lender of a loan may send `THANKS <loan>`: its borrower gets one SMS of thanks per
lender and loan. To anyone who did not lend to it, the loan does not exist (the same
NotFound as a number never given), as for STATUS.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from core import audit, outbox
from core.bulk import rowcount
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.loans import find_loan
from core.members import get_member
from core.messages import is_gsm7
from core.models import (
    Loan,
    LoanStatus,
    Member,
    MemberStatus,
    Pledge,
    PledgeStatus,
    Purpose,
    Story,
    StoryStatus,
)
from core.reminders import quiet_until

MAX_STORY = 80  # characters: the lenders' SMS fits one part with a first name of 7 letters


def clean_story(raw: str) -> str:
    """The story as it will be sent: spaces tidied; refused when empty, too long, or
    with characters a feature phone may not show."""
    story = " ".join(raw.split())
    if not any(ch.isalnum() for ch in story):
        raise InvalidInput("sms.story_usage")
    if len(story) > MAX_STORY:
        raise InvalidInput("story.too_long", max=MAX_STORY, length=len(story))
    if not is_gsm7(story):
        raise InvalidInput("story.plain_letters")
    return story


def submit(uow: UnitOfWork, *, member_id: int, text: str, now: datetime,
           request_key: str) -> Story:
    """Keep a story about the member's latest repaid loan, for an operator to read. A
    story still waiting is replaced by the new words; an approved one stays."""
    with uow:
        existing = uow.session.scalar(select(Story).where(Story.request_key == request_key))
        if existing is not None:
            return existing
        member = get_member(uow, member_id)
        story_text = clean_story(text)
        loan = uow.session.scalar(
            select(Loan).where(Loan.borrower_id == member.id, Loan.status == LoanStatus.REPAID)
            .order_by(Loan.closed_at.desc(), Loan.id.desc()).limit(1))
        if loan is None:
            raise NotAllowed("story.no_repaid_loan")
        earlier = list(uow.session.scalars(
            select(Story).where(Story.loan_id == loan.id,
                                Story.status != StoryStatus.REJECTED).with_for_update()))
        if any(s.status == StoryStatus.APPROVED for s in earlier):
            raise NotAllowed("story.already_shared", loan=loan.number)
        for waiting in earlier:  # the borrower wrote again before anyone read it
            waiting.status = StoryStatus.REJECTED
            waiting.decided_at, waiting.decided_by = now, "replaced"
            waiting.reason = "replaced by a newer story"
        story = Story(request_key=request_key, member_id=member.id, loan_id=loan.id,
                      text=story_text, status=StoryStatus.PENDING, created_at=now)
        uow.session.add(story)
        uow.session.flush()
        uow.commit()
        return story


@dataclass(frozen=True)
class StoryView:
    id: int
    loan: str
    borrower: str
    text: str
    status: StoryStatus
    created_at: datetime
    decided_by: str | None
    member_id: int
    decided_at: datetime | None
    reason: str | None


def list_stories(uow: UnitOfWork, status: StoryStatus | None = StoryStatus.PENDING,
                 limit: int = 50, *, newest_first: bool = False) -> list[StoryView]:
    """Stories, oldest first (the queue an operator works through), or newest first
    (the history of decisions)."""
    with uow:
        order = (Story.created_at.desc(), Story.id.desc()) if newest_first else (
            Story.created_at, Story.id)
        query = (select(Story, Loan.number, Member.name)
                 .join(Loan, Loan.id == Story.loan_id).join(Member, Member.id == Story.member_id)
                 .order_by(*order).limit(limit))
        if status is not None:
            query = query.where(Story.status == status)
        return [StoryView(id=s.id, loan=number or "", borrower=name, text=s.text,
                          status=s.status, created_at=s.created_at, decided_by=s.decided_by,
                          member_id=s.member_id, decided_at=s.decided_at, reason=s.reason)
                for s, number, name in uow.session.execute(query)]


def _decide(uow: UnitOfWork, story_id: int, status: StoryStatus, operator: str,
            now: datetime, reason: str | None = None) -> Story:
    """Move a waiting story to `status`, once: a conditional update decides races."""
    result = uow.session.execute(
        update(Story).where(Story.id == story_id, Story.status == StoryStatus.PENDING)
        .values(status=status, decided_at=now, decided_by=operator[:80],
                reason=(reason or None) and reason[:200])
        .execution_options(synchronize_session=False))
    story = uow.session.get(Story, story_id, populate_existing=True)
    if story is None:
        raise NotFound("story.not_found", id=story_id)
    if not rowcount(result):
        raise Conflict("story.decided", id=story_id, status=str(story.status))
    return story


@dataclass(frozen=True)
class Shared:
    story: Story
    lenders: int


SHARE = "share_story"  # the follow-up (UnitOfWork.follow_up) that tells members who want it
SHARE_BATCH = 1000


def approve(uow: UnitOfWork, *, story_id: int, operator: str, now: datetime,
            actor: audit.Actor | None = None) -> Shared:
    """Approve a waiting story: the loan's lenders get it, and the borrower is told, in
    this transaction; members who want stories get it after commit, a batch at a time
    (`share_with_members`, by a job, with a sweep behind it). With an `actor` (the
    console's operator), one audit row in the same transaction."""
    with uow:
        story = _decide(uow, story_id, StoryStatus.APPROVED, operator, now)
        loan = uow.session.get(Loan, story.loan_id)
        borrower = get_member(uow, story.member_id)
        assert loan is not None
        held = quiet_until(uow.settings, now)
        lenders = list(uow.session.execute(
            select(Member.id, Member.phone, Member.language).where(
                Member.id.in_(_lender_ids(loan.id)), Member.id != borrower.id, *_reachable())
            .order_by(Member.id)))
        messages = [outbox.Sms(key=f"story:{story.id}:{member_id}", phone=phone,
                               language=lang, template="sms.story_lender",
                               purpose=Purpose.NOTICE, params=_story_params(story, loan, borrower),
                               member_id=member_id, not_before=held)
                    for member_id, phone, lang in lenders]
        told = len(outbox.queue(uow, messages, now))
        outbox.queue(uow, [outbox.sms_to(borrower, f"story_shared:{story.id}",
                                         "sms.story_approved", Purpose.NOTICE, not_before=held,
                                         loan=loan.number)], now)
        uow.follow_up(SHARE, story.id)
        if actor is not None:
            audit.record(uow, actor, "story.approve", f"story:{story.id}", now=now,
                         before={"status": "pending"},
                         after={"status": "approved", "lenders": told})
        uow.commit()
        return Shared(story=story, lenders=told)


def _lender_ids(loan_id: int) -> Any:
    return select(Pledge.lender_id).where(Pledge.loan_id == loan_id,
                                          Pledge.status == PledgeStatus.POSTED)


def _reachable() -> tuple[Any, ...]:
    return (Member.sms_unreachable.is_(False), Member.status != MemberStatus.ERASED)


def _story_params(story: Story, loan: Loan, borrower: Member) -> dict[str, Any]:
    return {"name": borrower.first_name, "loan": loan.number, "story": story.text}


def share_with_members(uow: UnitOfWork, story_id: int, now: datetime) -> int:
    """Write an approved story to every member who wants stories (TIPS ON) and is not
    its borrower or one of its lenders, SHARE_BATCH members per transaction, resuming
    after the last one written (the story row, locked, keeps the cursor). Returns how
    many were written; a story already shared, or not approved, writes nothing."""
    written = 0
    while True:
        with uow:
            story = uow.session.get(Story, story_id, with_for_update=True)
            if story is None or story.status != StoryStatus.APPROVED or story.shared_at:
                return written
            loan = uow.session.get(Loan, story.loan_id)
            borrower = get_member(uow, story.member_id)
            assert loan is not None
            batch = uow.session.execute(
                select(Member.id, Member.phone, Member.language).where(
                    Member.id > story.share_cursor, Member.tips_wanted.is_(True),
                    Member.tips_opt_out.is_(False), Member.id != borrower.id,
                    Member.id.not_in(_lender_ids(loan.id)), *_reachable())
                .order_by(Member.id).limit(SHARE_BATCH)).all()
            held = quiet_until(uow.settings, now)
            params = _story_params(story, loan, borrower)
            written += len(outbox.queue(uow, [
                outbox.Sms(key=f"story:{story.id}:{member_id}", phone=phone, language=lang,
                           template="sms.story_member", purpose=Purpose.TIP, params=params,
                           member_id=member_id, not_before=held)
                for member_id, phone, lang in batch], now))
            if batch:
                story.share_cursor = batch[-1][0]
            if len(batch) < SHARE_BATCH:
                story.shared_at = now
            uow.commit()
            if story.shared_at:
                return written


def unshared(uow: UnitOfWork, before: datetime, limit: int = 20) -> list[int]:
    """Approved stories not yet written to every member who wants them, decided before
    `before`: what the sweep finishes when a share job was lost."""
    with uow:
        return list(uow.session.scalars(
            select(Story.id).where(Story.status == StoryStatus.APPROVED,
                                   Story.shared_at.is_(None), Story.decided_at < before)
            .order_by(Story.id).limit(limit)))


def reject(uow: UnitOfWork, *, story_id: int, operator: str, reason: str, now: datetime,
           actor: audit.Actor | None = None) -> Story:
    """Turn a waiting story down; the borrower is told kindly, without the reason. With
    an `actor`, one audit row in the same transaction."""
    reason = audit.reason_given(reason)
    with uow:
        story = _decide(uow, story_id, StoryStatus.REJECTED, operator, now, reason)
        borrower = get_member(uow, story.member_id)
        loan = uow.session.get(Loan, story.loan_id)
        assert loan is not None
        outbox.queue(uow, [outbox.sms_to(
            borrower, f"story_declined:{story.id}", "sms.story_declined", Purpose.NOTICE,
            not_before=quiet_until(uow.settings, now), loan=loan.number)], now)
        if actor is not None:
            audit.record(uow, actor, "story.reject", f"story:{story.id}", now=now,
                         before={"status": "pending"}, after={"status": "rejected"},
                         reason=reason)
        uow.commit()
        return story


def thank(uow: UnitOfWork, *, lender_id: int, number: str, now: datetime) -> bool:
    """A lender thanks the borrower of a loan they lent to: one SMS per lender and loan.
    True when this wrote it, False when they had thanked before. Anyone who did not
    lend to the loan gets the NotFound of a number that does not exist."""
    with uow:
        loan = find_loan(uow, number)
        lent = uow.session.scalar(select(Pledge.id).where(
            Pledge.loan_id == loan.id, Pledge.lender_id == lender_id,
            Pledge.status == PledgeStatus.POSTED).limit(1)) is not None
        if not lent:
            raise NotFound("loan.not_found", number=loan.number)
        borrower = loan.borrower
        if borrower.status == MemberStatus.ERASED:
            return True  # said as done: the lender learns nothing of the borrower's choice
        written = outbox.queue(uow, [outbox.sms_to(
            borrower, f"thanks:{loan.id}:{lender_id}", "sms.thanks_received", Purpose.NOTICE,
            not_before=quiet_until(uow.settings, now), loan=loan.number)], now)
        uow.commit()
        return bool(written)

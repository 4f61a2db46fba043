"""A member's rights over their data (Kenya's Data Protection Act, 2019): to know what
Harambee holds (`DATA`), and to have it corrected (`DATA FIX ...`) or erased
(`DATA DELETE`).

A correction or an erasure opens a case (`DataRequest`, numbered `P1001`...) with a
7-day clock (`due_at`); the member is told its number and date. Operators list the
cases and close them (`harambee data list / close / erase`, and the console's data
cases, which pass their operator as `actor`: each decision is audited in its
transaction).

Erasure anonymises the person and keeps the books the law requires:
- the member's name, national ID (seen or claimed), phone, place and PIN are replaced
  by a tombstone (`Erased member`, phone `erased:<id>`), their roles dropped, their
  status `erased`; no SMS goes to them again;
- what they wrote or were sent (SMS in and out, stories, the text of their data
  requests, pay-now prompts) loses its phone number and text; a story still waiting
  for an operator is withdrawn;
- kept as they are, because lending and tax law require them (seven years): the
  ledger (accounts and transfers, which name members only by id), loans and their
  installments, pledges, payments received (with the payer's number, as M-Pesa
  reported it), payouts sent (with the number paid) and disputes (complaint records).
Erasure is refused while the person still owes, is owed, or holds money: an open
loan, a pledge not yet settled, a loan they lent to and not yet repaid in full (one
funded, being repaid or in default), a wallet not empty or a payout in flight. The
case stays open and the operator tells them why; a payment later made to an erased
member's closed loan waits in suspense (core/repayments.py), as no wallet takes it.
`harambee check` stays clean: no transfer or counter is touched.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from core import audit, ledger, outbox
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.members import get_member
from core.models import (
    OPEN_LOAN_STATES,
    DataRequest,
    DataRequestKind,
    DataRequestStatus,
    InboundSms,
    Loan,
    LoanStatus,
    Member,
    MemberStatus,
    OutboxMessage,
    OutboxStatus,
    Payment,
    Pledge,
    PledgeStatus,
    Purpose,
    StkRequest,
    Story,
    StoryStatus,
)
from core.numbers import data_case_number

ANSWER_WITHIN = timedelta(days=7)
MAX_TEXT = 300
ERASED_NAME = "Erased member"
ERASED_TEXT = "(erased)"


def erased_phone(member_id: int) -> str:
    """The tombstone in place of an erased member's phone: unique, never a number."""
    return f"erased:{member_id}"


# ---------------------------------------------------------------- what we hold

@dataclass(frozen=True)
class DataHeld:
    name: str
    phone: str
    national_id: str | None  # seen by an agent, or only claimed
    place: str | None
    language: str
    agent: str | None  # the agent's first name
    roles: tuple[str, ...]
    loans: int
    pledges: int
    payments: int
    messages: int  # SMS to and from them that we keep


def data_held(uow: UnitOfWork, member_id: int) -> DataHeld:
    """What Harambee holds about a member, for `DATA`."""
    with uow:
        member = get_member(uow, member_id)
        s = uow.session

        def count(column: Any, *where: Any) -> int:
            return int(s.scalar(select(func.count(column)).where(*where)) or 0)

        return DataHeld(
            name=member.name, phone=member.phone,
            national_id=member.national_id or member.claimed_national_id,
            place=member.place, language=member.language,
            agent=member.agent.first_name if member.agent is not None else None,
            roles=tuple(sorted(member.role_set)),
            loans=count(Loan.id, Loan.borrower_id == member.id),
            pledges=count(Pledge.id, Pledge.lender_id == member.id),
            payments=count(Payment.id, Payment.member_id == member.id),
            messages=count(OutboxMessage.id, OutboxMessage.member_id == member.id)
            + count(InboundSms.id, InboundSms.member_id == member.id))


# ---------------------------------------------------------------- cases

def open_request(uow: UnitOfWork, *, member_id: int, kind: DataRequestKind,
                 text: str | None, now: datetime, request_key: str) -> DataRequest:
    """Open a correction or erasure case and tell the member its number and date. A
    member with the same kind of case still open is told that one again."""
    with uow:
        existing = uow.session.scalar(select(DataRequest).where(
            DataRequest.request_key == request_key))
        if existing is not None:
            return existing
        member = get_member(uow, member_id, lock=True)
        detail = " ".join((text or "").split())[:MAX_TEXT] or None
        if kind == DataRequestKind.CORRECT and (detail is None
                                                or not any(c.isalnum() for c in detail)):
            raise InvalidInput("sms.data_fix_usage")
        request = uow.session.scalar(select(DataRequest).where(
            DataRequest.member_id == member.id, DataRequest.kind == kind,
            DataRequest.status == DataRequestStatus.OPEN))
        if request is None:
            request = DataRequest(request_key=request_key, member_id=member.id, kind=kind,
                                  text=detail, status=DataRequestStatus.OPEN, created_at=now,
                                  due_at=now + ANSWER_WITHIN)
            uow.session.add(request)
            uow.session.flush()
            request.number = data_case_number(request.id)
        elif detail:
            request.text = " / ".join(filter(None, [request.text, detail]))[:MAX_TEXT * 3]
        template = ("sms.data_erase_opened" if kind == DataRequestKind.ERASE
                    else "sms.data_fix_opened")
        outbox.queue(uow, [outbox.sms_to(
            member, f"data_request:{request_key}", template, Purpose.NOTICE,
            case=request.number,
            due=request.due_at.astimezone(uow.settings.zone).strftime("%d/%m/%Y"))], now)
        uow.commit()
        return request


@dataclass(frozen=True)
class RequestView:
    number: str
    kind: DataRequestKind
    status: DataRequestStatus
    member_id: int
    member: str
    text: str | None
    created_at: datetime
    due_at: datetime
    overdue: bool
    note: str | None
    id: int = 0
    closed_at: datetime | None = None
    closed_by: str | None = None


def _view(r: DataRequest, name: str, now: datetime) -> RequestView:
    return RequestView(number=r.number or "", kind=r.kind, status=r.status,
                       member_id=r.member_id, member=name, text=r.text,
                       created_at=r.created_at, due_at=r.due_at,
                       overdue=r.status == DataRequestStatus.OPEN and r.due_at < now,
                       note=r.note, id=r.id, closed_at=r.closed_at, closed_by=r.closed_by)


def list_requests(uow: UnitOfWork, now: datetime, *, status: DataRequestStatus | None =
                  DataRequestStatus.OPEN, limit: int = 100) -> list[RequestView]:
    """Cases, soonest due first; `overdue` when an open case passed its 7 days."""
    with uow:
        query = (select(DataRequest, Member.name)
                 .join(Member, Member.id == DataRequest.member_id)
                 .order_by(DataRequest.due_at, DataRequest.id).limit(limit))
        if status is not None:
            query = query.where(DataRequest.status == status)
        return [_view(r, name, now) for r, name in uow.session.execute(query)]


def _case_number(typed: str) -> str:
    """A case number as typed, tidied: no NUL (PostgreSQL refuses it), at most 12."""
    return typed.replace("\x00", "").strip().upper()[:12]


def request_case(uow: UnitOfWork, number: str, now: datetime
                 ) -> tuple[RequestView, list[tuple[str, dict[str, str]]]]:
    """One case, and for an open erasure what still stands in its way (`erase_blockers`)."""
    with uow:
        found = uow.session.execute(
            select(DataRequest, Member).join(Member, Member.id == DataRequest.member_id)
            .where(DataRequest.number == _case_number(number))).first()
        if found is None:
            raise NotFound("data.case_not_found", case=_case_number(number))
        request, member = found
        blockers = (erase_blockers(uow, member) if request.kind == DataRequestKind.ERASE
                    and request.status == DataRequestStatus.OPEN else [])
        return _view(request, member.name, now), blockers


def _open_case(uow: UnitOfWork, number: str) -> DataRequest:
    request = uow.session.scalar(select(DataRequest).where(
        DataRequest.number == _case_number(number)).with_for_update())
    if request is None:
        raise NotFound("data.case_not_found", case=_case_number(number))
    if request.status != DataRequestStatus.OPEN:
        raise Conflict("data.case_closed", case=request.number, status=str(request.status))
    return request


def close_request(uow: UnitOfWork, *, number: str, operator: str, note: str, done: bool,
                  now: datetime, actor: audit.Actor | None = None) -> DataRequest:
    """Close a case by hand: a correction made (`done`), or a request refused with the
    reason in `note` (for the record; the member is asked to call). Erasures are done
    by `erase`, which does the erasing. With an `actor`, audited in this transaction."""
    note = audit.reason_given(note)
    with uow:
        request = _open_case(uow, number)
        if done and request.kind == DataRequestKind.ERASE:
            raise InvalidInput("data.erase_by_erase", case=request.number)
        _close(request, DataRequestStatus.DONE if done else DataRequestStatus.REFUSED,
               operator, note, now)
        member = get_member(uow, request.member_id)
        outbox.queue(uow, [outbox.sms_to(
            member, f"data_closed:{request.id}",
            "sms.data_fixed" if done else "sms.data_refused", Purpose.NOTICE,
            case=request.number, phone=uow.settings.app.support_phone)], now)
        if actor is not None:
            audit.record(uow, actor, "data.close", f"data:{request.number}",
                         now=now, before={"status": "open"},
                         after={"status": str(request.status), "member": member.id},
                         reason=note)
        uow.commit()
        return request


def _close(request: DataRequest, status: DataRequestStatus, operator: str, note: str,
           now: datetime) -> None:
    request.status, request.closed_at = status, now
    request.closed_by, request.note = operator[:80], (note or None) and note[:200]


def erase_blockers(uow: UnitOfWork, member: Member) -> list[tuple[str, dict[str, str]]]:
    """Why this member cannot be erased yet (message keys and values); empty when they can."""
    s = uow.session
    found: list[tuple[str, dict[str, str]]] = []
    loan = s.scalar(select(Loan.number).where(Loan.borrower_id == member.id,
                                              Loan.status.in_(OPEN_LOAN_STATES)).limit(1))
    if loan is not None:
        found.append(("privacy.open_loan", {"loan": loan}))
    pledge = s.scalar(select(Loan.number).join(Pledge, Pledge.loan_id == Loan.id).where(
        Pledge.lender_id == member.id,
        or_(Pledge.status.in_([PledgeStatus.PROPOSED, PledgeStatus.CONFIRMED]),
            (Pledge.status == PledgeStatus.POSTED) & (Loan.status != LoanStatus.REPAID)))
        .limit(1))
    if pledge is not None:
        found.append(("privacy.lending", {"loan": pledge}))
    wallet = ledger.find_account(uow, ledger.wallet_code(member.id))
    if wallet is not None and (wallet.balance or wallet.debits_pending):
        found.append(("privacy.wallet", {"amount": uow.settings.fmt(wallet.balance)}))
    return found


def erase(uow: UnitOfWork, *, number: str, operator: str, now: datetime,
          actor: audit.Actor | None = None) -> DataRequest:
    """Do an open erasure case: anonymise the member (module docstring). Raises
    NotAllowed with the first reason while they still owe, are owed or hold money.
    With an `actor`, audited in this transaction."""
    with uow:
        request = _open_case(uow, number)
        if request.kind != DataRequestKind.ERASE:
            raise InvalidInput("data.not_erasure", case=request.number)
        member = get_member(uow, request.member_id, lock=True)
        blockers = erase_blockers(uow, member)
        if blockers:
            key, params = blockers[0]
            raise NotAllowed(key, **params)
        old_phone, language = member.phone, member.language
        _anonymise(uow, member)
        _close(request, DataRequestStatus.DONE, operator, "erased", now)
        # The last word to the number that was theirs; the row names no member.
        outbox.queue(uow, [outbox.Sms(key=f"erased:{request.id}", phone=old_phone,
                                      language=language, template="sms.data_erased",
                                      purpose=Purpose.NOTICE, params={"case": request.number})],
                     now)
        if actor is not None:
            audit.record(uow, actor, "data.erase", f"data:{request.number}", now=now,
                         before={"status": "open"},
                         after={"status": "done", "member": member.id, "erased": True})
        uow.commit()
        return request


def _anonymise(uow: UnitOfWork, member: Member) -> None:
    s = uow.session
    tombstone = erased_phone(member.id)
    old_phone = member.phone
    member.name, member.phone = ERASED_NAME, tombstone
    member.national_id = member.claimed_national_id = member.place = None
    member.pin_hash, member.pin_failures, member.pin_locked_until = None, 0, None
    member.roles, member.status = "", MemberStatus.ERASED
    member.tips_wanted, member.tips_opt_out, member.sms_unreachable = False, True, True
    s.flush()
    mine = or_(OutboxMessage.member_id == member.id, OutboxMessage.phone == old_phone)
    s.execute(update(OutboxMessage).where(mine, OutboxMessage.status == OutboxStatus.QUEUED)
              .values(status=OutboxStatus.SKIPPED, last_error="member erased",
                      next_attempt_at=None).execution_options(synchronize_session=False))
    s.execute(update(OutboxMessage).where(mine).values(phone=tombstone, text=ERASED_TEXT)
              .execution_options(synchronize_session=False))
    s.execute(update(InboundSms).where(or_(InboundSms.member_id == member.id,
                                           InboundSms.phone == old_phone))
              .values(phone=tombstone, text=ERASED_TEXT)
              .execution_options(synchronize_session=False))
    s.execute(update(Story).where(Story.member_id == member.id,
                                  Story.status == StoryStatus.PENDING)
              .values(status=StoryStatus.REJECTED, decided_by="erasure",
                      reason="member erased").execution_options(synchronize_session=False))
    s.execute(update(Story).where(Story.member_id == member.id).values(text=ERASED_TEXT)
              .execution_options(synchronize_session=False))
    s.execute(update(DataRequest).where(DataRequest.member_id == member.id,
                                        DataRequest.text.is_not(None))
              .values(text=ERASED_TEXT).execution_options(synchronize_session=False))
    s.execute(update(StkRequest).where(StkRequest.member_id == member.id)
              .values(phone=tombstone).execution_options(synchronize_session=False))


"""Pledges: a lender proposes an amount, confirms it by SMS code (the hold is placed),
or declines; the pledge that completes a loan funds it (every hold posted at once);
unconfirmed pledges lapse. The loan itself is in core/loans.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, select, update

from core import guarantees, ledger, outbox
from core.allocation import largest_remainder_whole
from core.bulk import rowcount, set_rows
from core.codes import new_code
from core.config import Settings
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound, PinLocked
from core.loans import find_loan_for, require_active
from core.members import check_pin, find_by_phone, get_member, is_pin_locked, pin_lock_text
from core.messages import format_time
from core.models import (
    Account,
    AccountKind,
    HoldState,
    Loan,
    LoanStatus,
    Member,
    Pledge,
    PledgeStatus,
    Purpose,
    Role,
    Transfer,
    TransferCode,
)
from core.numbers import normalise_loan_number
from core.phones import normalise

_PLEDGES = Pledge.__table__


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What `YES <code>` did, or had already done on a replay: plain values, so the hot
    path builds no ORM objects."""

    pledge_id: int
    code: str
    amount: int
    status: PledgeStatus
    loan_id: int
    loan_number: str
    loan_status: LoanStatus

    @property
    def funded(self) -> bool:
        """The loan is fully pledged: every hold, this one's too, is posted."""
        return self.status == PledgeStatus.POSTED


@dataclass(frozen=True, slots=True)
class _Target:
    """The locked pledge, its loan and its lender: only the columns confirming reads."""

    pledge_id: int
    status: PledgeStatus
    amount: int
    code: str
    confirm_by: datetime
    loan_id: int
    loan_number: str
    loan_status: LoanStatus
    loan_amount: int
    interest: int
    pledged: int
    loan_account_id: int | None
    deadline: datetime | None
    borrower_id: int
    lender_id: int
    phone: str
    language: str
    pin_locked_until: datetime | None
    wallet_id: int | None

    @property
    def open_amount(self) -> int:
        return self.loan_amount - self.pledged

    @property
    def escrow_id(self) -> int:
        """The loan's account, which every listed loan has."""
        assert self.loan_account_id is not None
        return self.loan_account_id

    def confirmation(self, status: PledgeStatus, loan_status: LoanStatus) -> Confirmation:
        return Confirmation(self.pledge_id, self.code, self.amount, status, self.loan_id,
                            self.loan_number, loan_status)


def _waiting_codes(uow: UnitOfWork, lender_id: int) -> set[str]:
    """Codes the member's YES or NO could mean now: their waiting pledges' and (so that
    no code means two things) the guarantees waiting for their answer."""
    return set(uow.session.scalars(select(Pledge.code).where(
        Pledge.lender_id == lender_id, Pledge.status == PledgeStatus.PROPOSED))) | \
        guarantees.waiting_codes(uow, lender_id)


def propose_pledge(uow: UnitOfWork, *, lender_id: int, number: str, amount: int,
                   now: datetime, request_key: str | None = None,
                   pin: str | None = None) -> Pledge:
    """A lender offers an amount; an SMS code must confirm it before the hold is placed.
    With `pin` (USSD), the lender's PIN is checked first."""
    settings = uow.settings
    if pin is not None:
        check_pin(uow, lender_id, pin, now)
    with uow:
        if request_key:
            existing = uow.session.scalar(select(Pledge).where(Pledge.request_key == request_key))
            if existing is not None:
                normal = normalise_loan_number(number, settings.loan.number_prefix)
                if (existing.lender_id, existing.amount, existing.loan.number) != (
                        lender_id, amount, normal):
                    raise Conflict("ledger.key_reused")
                return existing
        # The lender's row is locked: parallel proposals are counted one after another.
        lender = get_member(uow, lender_id, lock=True)
        require_active(lender, Role.LENDER)
        if is_pin_locked(lender, now):  # even by SMS, where no PIN is typed
            raise PinLocked(until=pin_lock_text(lender, settings))
        waiting = _waiting_codes(uow, lender.id)
        proposed = len(waiting - guarantees.waiting_codes(uow, lender.id))
        if proposed >= settings.loan.max_open_proposals:
            raise NotAllowed("pledge.too_many_open", count=proposed)
        loan = find_loan_for(uow, lender.id, number)
        if loan.status != LoanStatus.LISTED or loan.deadline is None or loan.deadline <= now:
            raise NotAllowed("loan.not_listed", number=loan.number)
        if loan.borrower_id == lender.id:
            raise NotAllowed("pledge.own_loan")
        if not guarantees.pledging_open(loan):
            raise NotAllowed("loan.awaiting_guarantors", number=loan.number)
        check_pledge_amount(settings, amount, open_amount=loan.open_amount,
                            available=ledger.wallet(uow, lender.id).available,
                            number=loan.number or number)
        hours = settings.loan.pledge_confirm_hours
        pledge = Pledge(loan_id=loan.id, lender_id=lender.id, amount=amount,
                        code=new_code(waiting), status=PledgeStatus.PROPOSED,
                        request_key=request_key, repaid=0, entitled=0, created_at=now,
                        confirm_by=min(now + timedelta(hours=hours), loan.deadline))
        uow.session.add(pledge)
        uow.session.flush()
        outbox.queue(uow, [outbox.sms_to(
            lender, f"code:{pledge.id}", "sms.pledge_code", Purpose.CODE,
            amount=settings.fmt(amount), borrower=loan.borrower.first_name, loan=loan.number,
            code=pledge.code, hours=hours)], now)
        uow.commit()
        return pledge


def pledge_bounds(settings: Settings, *, open_amount: int, available: int) -> tuple[int, int]:
    """The smallest and largest amount a lender may pledge now: at least `loan.min_pledge`
    (or what is still open, when less), at most what is open and what their wallet holds.
    None fits when the first is larger than the second."""
    low = max(1, min(settings.minor(settings.loan.min_pledge), open_amount))
    return low, min(open_amount, available)


def check_pledge_amount(settings: Settings, amount: int, *, open_amount: int, available: int,
                        number: str) -> None:
    """Raise the reason `amount` cannot be pledged to loan `number` now."""
    low, high = pledge_bounds(settings, open_amount=open_amount, available=available)
    if amount < low:
        raise InvalidInput("pledge.too_small", min=settings.fmt(low))
    if amount % settings.app.minor_scale:  # lenders are paid back in whole shillings
        raise InvalidInput("pledge.whole_units", currency=settings.app.currency_label)
    if amount > high:  # say which bound binds: the wallet, or what is left on the loan
        if available < open_amount:
            raise ledger.InsufficientFunds(available=settings.fmt(available))
        raise InvalidInput("pledge.over_open", open=settings.fmt(open_amount), number=number)


def _pledge_by_code(uow: UnitOfWork, phone: str, code: str) -> tuple[Member, Pledge]:
    lender = find_by_phone(uow, phone)
    clean = (code or "").strip()
    if lender is None or not clean.isdigit():
        raise NotFound("pledge.code_invalid", code=clean[:8])
    pledge = uow.session.scalar(
        select(Pledge).where(Pledge.lender_id == lender.id, Pledge.code == clean)
        .order_by((Pledge.status == PledgeStatus.PROPOSED).desc(), Pledge.id.desc()).limit(1))
    if pledge is None:
        raise NotFound("pledge.code_invalid", code=clean)
    return lender, pledge


# Built once: this runs on every `YES <code>`. Core columns, not entities: building
# three ORM objects (60 columns) was a third of a confirmation's Python time.
_TARGET = (
    select(Pledge.id, Pledge.status, Pledge.amount, Pledge.code, Pledge.confirm_by,
           Loan.id, Loan.number, Loan.status, Loan.amount, Loan.interest, Loan.pledged,
           Loan.account_id, Loan.deadline, Loan.borrower_id, Member.id, Member.phone,
           Member.language, Member.pin_locked_until, Account.id)
    .join(Member, Member.id == Pledge.lender_id).join(Loan, Loan.id == Pledge.loan_id)
    .outerjoin(Account, and_(Account.member_id == Member.id, Account.kind == AccountKind.WALLET))
    .where(Member.phone == bindparam("phone"), Pledge.code == bindparam("code"))
    .order_by((Pledge.status == PledgeStatus.PROPOSED).desc(), Pledge.id.desc()).limit(1)
    .with_for_update(of=[Pledge.__table__, Loan.__table__]))


def _locked_target(uow: UnitOfWork, phone: str, code: str) -> _Target:
    """The lender's pledge with this code (a proposed one first), its loan and the
    lender's wallet id, in one query that locks the loan and the pledge rows: whoever
    held them before (a confirmation, a cancellation, an expiry) has finished, and we
    see the rows as they left them."""
    e164 = normalise(phone, uow.settings.app.default_region)
    clean = (code or "").strip()
    if not clean.isdigit():
        raise NotFound("pledge.code_invalid", code=clean[:8])
    found = uow.connection.execute(_TARGET, {"phone": e164, "code": clean}).first()
    if found is None:
        raise NotFound("pledge.code_invalid", code=clean)
    return _Target(*found)


# The writes that stand or fall with a pledge's hold, built once (the hot path of
# `YES <code>`); on PostgreSQL they go in the hold's own statement. The pledge, still
# proposed, claims the hold: lapse_pledges does not take the loan lock, so the pledge
# row decides that race.
_CLAIM = ledger.Step(
    "pledge", "UPDATE pledges SET status = :confirmed, confirmed_at = :now, "
              "hold_id = {hold_id} WHERE id = :pledge_id AND status = :proposed AND {after}")
_ADD_TO_LOAN = ledger.Step(
    "loan", "UPDATE loans SET pledged = pledged + :amount "
            "WHERE id = :loan_id AND pledged + :amount <= amount AND {after}")
_CLAIMED = {"confirmed": str(PledgeStatus.CONFIRMED), "proposed": str(PledgeStatus.PROPOSED)}
# A pledge that leaves the loan open: its hold, the claim, the loan's total, the receipt.
_CONFIRMED = ledger.Then(_CLAIM, _ADD_TO_LOAN, outbox.QUEUE_AFTER_HOLD)
# The pledge that completes the loan: its hold and the claim; funding does the rest.
_CLAIMED_TO_FUND = ledger.Then(_CLAIM)


def confirm_pledge(uow: UnitOfWork, *, phone: str, code: str, now: datetime) -> Confirmation:
    """`YES <code>` from the lender's own phone: the hold is placed on their wallet.

    Refused beyond what is still open on the loan or beyond the wallet. The pledge that
    completes the loan funds it in the same transaction. Idempotent: a replay (even a
    concurrent one) returns the first confirmation and holds nothing twice.
    """
    settings = uow.settings
    with uow:
        target = _locked_target(uow, phone, code)
        if target.status in (PledgeStatus.CONFIRMED, PledgeStatus.POSTED):
            return target.confirmation(target.status, target.loan_status)
        if target.status == PledgeStatus.LAPSED or (
                target.status == PledgeStatus.PROPOSED and target.confirm_by <= now):
            raise NotAllowed("pledge.code_expired", code=target.code)
        if target.status != PledgeStatus.PROPOSED:
            raise NotAllowed("pledge.done", code=target.code, status=target.status)
        if target.pin_locked_until is not None and target.pin_locked_until > now:
            # A locked PIN stops every money step, on every channel, until it unlocks.
            raise PinLocked(until=format_time(target.pin_locked_until.astimezone(
                settings.zone)))
        if target.loan_status != LoanStatus.LISTED:
            raise NotAllowed("loan.not_listed", number=target.loan_number)
        if target.amount > target.open_amount:
            raise InvalidInput("pledge.over_open", open=settings.fmt(target.open_amount),
                               number=target.loan_number)
        wallet_id = target.wallet_id or ledger.wallet_id(uow, target.lender_id)
        if target.amount == target.open_amount:
            done = _confirm_and_fund(uow, target, wallet_id, now)
        else:
            _place_hold(uow, target, wallet_id, now, then=_CONFIRMED,
                        **outbox.after_hold_values(_receipt(target, settings), now))
            _reload_if_loaded(uow, [target.pledge_id], target.loan_id)
            done = target.confirmation(PledgeStatus.CONFIRMED, target.loan_status)
        uow.commit()
        return done


def _place_hold(uow: UnitOfWork, target: _Target, wallet_id: int, now: datetime, *,
                then: ledger.Then, **params: object) -> ledger.Hold:
    """The pledge's hold on the lender's wallet towards the loan, then `then`'s writes
    (with `params` besides the claim's own); each refusal in the lender's terms."""
    try:
        return ledger.place_hold(uow, ledger.Movement(
            key=f"hold:{target.pledge_id}", debit_id=wallet_id, credit_id=target.escrow_id,
            amount=target.amount, code=TransferCode.PLEDGE_HOLD, loan_id=target.loan_id), now,
            expires_at=target.deadline, then=then,
            params={"pledge_id": target.pledge_id, **_CLAIMED, **params})
    except ledger.InsufficientFunds as exc:
        raise ledger.InsufficientFunds(
            available=uow.settings.fmt(int(exc.params["available"]))) from None
    except ledger.Unfollowed as exc:
        # Neither can happen under the loan's and the pledge's row locks; raising (the
        # use case rolls back) leaves nothing half-done if it ever does.
        if exc.step == "pledge":
            raise NotAllowed("pledge.done", code=target.code, status=target.status) from None
        raise InvalidInput("pledge.over_open", open=uow.settings.fmt(target.open_amount),
                           number=target.loan_number) from None


@dataclass(frozen=True, slots=True)
class _Backer:
    """A confirmed pledge of the loan being funded, its lender and its hold."""

    pledge_id: int
    amount: int
    lender_id: int
    phone: str
    language: str
    hold: ledger.Hold


_BACKERS = (
    select(Pledge.id, Pledge.amount, Member.id, Member.phone, Member.language,
           *ledger.HOLD_COLUMNS)
    .join(Member, Member.id == Pledge.lender_id).join(Transfer, Transfer.id == Pledge.hold_id)
    .where(Pledge.loan_id == bindparam("loan_id"), Pledge.status == PledgeStatus.CONFIRMED))


def _confirm_and_fund(uow: UnitOfWork, target: _Target, wallet_id: int,
                      now: datetime) -> Confirmation:
    """The pledge that completes the loan: its hold is placed and posted with every
    other at once, each lender's share of principal and interest is fixed, and the
    borrower and every lender are told. Plain rows and set-wise statements: a loan
    may have hundreds of lenders."""
    settings = uow.settings
    backers = [_Backer(pledge_id, amount, lender_id, phone, language, ledger.Hold(*hold))
               for pledge_id, amount, lender_id, phone, language, *hold
               in uow.session.execute(_BACKERS, {"loan_id": target.loan_id})]
    # Funding posts every hold: lock all the wallets it touches up front, in id order,
    # so two fundings sharing lenders cannot deadlock.
    ledger.lock_accounts(uow, [wallet_id, target.escrow_id,
                               *(b.hold.debit_account_id for b in backers)])
    hold = _place_hold(uow, target, wallet_id, now, then=_CLAIMED_TO_FUND)
    backers.append(_Backer(target.pledge_id, target.amount, target.lender_id, target.phone,
                           target.language, hold))
    backers.sort(key=lambda b: b.pledge_id)
    ledger.resolve_holds(uow, [b.hold for b in backers], now, to=HoldState.POSTED)
    shares = largest_remainder_whole(target.loan_amount + target.interest,
                                     [b.amount for b in backers], settings.app.minor_scale)
    set_rows(uow.session, _PLEDGES, "id",
             [{"id": b.pledge_id, "entitled": share} for b, share in zip(backers, shares,
                                                                        strict=True)],
             same={"status": PledgeStatus.POSTED})
    uow.session.execute(
        update(Loan).where(Loan.id == target.loan_id)
        .values(pledged=Loan.pledged + target.amount, funded=sum(b.amount for b in backers),
                status=LoanStatus.FUNDED, funded_at=now)
        .execution_options(synchronize_session=False))
    _reload_if_loaded(uow, [b.pledge_id for b in backers], target.loan_id)
    borrower = uow.session.execute(select(Member.phone, Member.language).where(
        Member.id == target.borrower_id)).one()
    number = target.loan_number
    outbox.queue(uow, [
        _receipt(target, settings),
        outbox.Sms(key=f"funded:{target.loan_id}", phone=borrower.phone,
                   language=borrower.language, template="sms.loan_funded_borrower",
                   purpose=Purpose.NOTICE, member_id=target.borrower_id,
                   params={"loan": number, "amount": settings.fmt(target.loan_amount)}),
        *(outbox.Sms(key=f"funded:{target.loan_id}:{b.pledge_id}", phone=b.phone,
                     language=b.language, template="sms.loan_funded_lender",
                     purpose=Purpose.NOTICE, member_id=b.lender_id,
                     params={"loan": number, "amount": settings.fmt(b.amount)})
          for b in backers)], now)
    return target.confirmation(PledgeStatus.POSTED, LoanStatus.FUNDED)


def _reload_if_loaded(uow: UnitOfWork, pledge_ids: list[int], loan_id: int) -> None:
    """The pledge and loan rows were changed by statements, not through the ORM: an
    instance this session had already loaded is reloaded (none on the hot path)."""
    for loaded in [*uow.loaded(Pledge, pledge_ids), *uow.loaded(Loan, [loan_id])]:
        uow.session.refresh(loaded)


def _receipt(target: _Target, settings: Settings) -> outbox.Sms:
    pledged = target.pledged + target.amount
    return outbox.Sms(key=f"confirmed:{target.pledge_id}", phone=target.phone,
                      language=target.language, template="sms.pledge_confirmed",
                      purpose=Purpose.RECEIPT, member_id=target.lender_id,
                      params={"amount": settings.fmt(target.amount),
                              "loan": target.loan_number,
                              "percent": pledged * 100 // target.loan_amount})


def decline_pledge(uow: UnitOfWork, *, phone: str, code: str, now: datetime) -> Pledge:
    """`NO <code>`: a proposed pledge is dropped; nothing was held."""
    with uow:
        lender, pledge = _pledge_by_code(uow, phone, code)
        if pledge.status == PledgeStatus.CANCELLED:
            return pledge
        if pledge.status != PledgeStatus.PROPOSED:
            raise NotAllowed("pledge.done", code=pledge.code, status=pledge.status)
        # A confirmation racing this one wins or loses on the pledge row, never both.
        dropped = rowcount(uow.session.execute(
            update(Pledge).where(Pledge.id == pledge.id, Pledge.status == PledgeStatus.PROPOSED)
            .values(status=PledgeStatus.CANCELLED, closed_at=now)
            .execution_options(synchronize_session=False)))
        uow.session.refresh(pledge)
        if dropped != 1:
            if pledge.status == PledgeStatus.CANCELLED:
                return pledge
            raise NotAllowed("pledge.done", code=pledge.code, status=pledge.status)
        outbox.queue(uow, [outbox.sms_to(lender, f"declined:{pledge.id}", "sms.pledge_declined",
                                         Purpose.RECEIPT, code=pledge.code)], now)
        uow.commit()
        return pledge


def lapse_pledges(uow: UnitOfWork, now: datetime, *, limit: int = 500) -> int:
    """Proposed pledges never confirmed in time lapse; the lender is told."""
    settings = uow.settings
    with uow:
        due = list(uow.session.scalars(select(Pledge).where(
            Pledge.status == PledgeStatus.PROPOSED, Pledge.confirm_by <= now).order_by(Pledge.id)
            .limit(limit).with_for_update(skip_locked=True)))  # SQLite renders no FOR UPDATE
        for pledge in due:
            pledge.status = PledgeStatus.LAPSED
            pledge.closed_at = now
        outbox.queue(uow, [outbox.sms_to(
            p.lender, f"lapsed:{p.id}", "sms.pledge_lapsed", Purpose.NOTICE,
            amount=settings.fmt(p.amount), loan=p.loan.number) for p in due], now)
        uow.commit()
        return len(due)


"""Guarantors by consent (after Fineract's guarantor funds): a borrower names members
of their own group as guarantors of part of a loan; each sees the exact exposure in
plain words and consents with their PIN, or declines.

The money rules, all through core/ledger.py's hold primitive:
- consent places a hold on the guarantor's wallet towards the loan's escrow, for the
  amount guaranteed (`guarantee:<id>:1`); a wallet that cannot cover it refuses;
- as the loan is repaid the exposure falls pro rata, `amount * outstanding / total
  due`, rounded up to the whole shilling: the hold is voided and a smaller one placed
  (`guarantee:<id>:<n>`), so one hold at a time, never more than guaranteed;
- repaid, cancelled or expired: the hold is voided (released), once;
- defaulted: the holds are posted (called), once, and the money goes on to the
  lenders pro rata to what each is still owed (`allocation.largest_remainder_whole`),
  never more than they are owed; guarantors, lenders and the borrower are told.

`harambee check` (invariant 7) verifies every guarantee against its holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select

from core import ledger, outbox
from core.allocation import largest_remainder_whole
from core.bulk import add_to_rows
from core.codes import new_code
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound, PinLocked
from core.groups import group_of
from core.members import check_pin, find_by_phone, is_pin_locked, pin_lock_text
from core.models import (
    BEING_REPAID,
    PAID_OUT,
    Account,
    AccountKind,
    Guarantee,
    GuaranteeStatus,
    HoldState,
    Loan,
    LoanStatus,
    Member,
    Pledge,
    PledgeStatus,
    Purpose,
    Transfer,
    TransferCode,
)
from core.numbers import normalise_loan_number

# A guarantee may be asked and consented to while the loan can still be helped by it.
ASKABLE = (LoanStatus.LISTED, LoanStatus.FUNDED, *BEING_REPAID)
_PLEDGES = Pledge.__table__


def exposure(amount: int, loan: Loan, unit: int) -> int:
    """What a guarantee of `amount` still covers: all of it until the loan is paid
    out, then its share of what is still owed, rounded up to a whole `unit`."""
    if loan.status not in PAID_OUT:
        return amount
    if loan.outstanding <= 0:
        return 0
    share = -(-amount * loan.outstanding // loan.total_due)  # ceiling
    return min(amount, -(-share // unit) * unit)


def _loan(uow: UnitOfWork, number: str, *, lock: bool = True) -> Loan:
    normal = normalise_loan_number(number, uow.settings.loan.number_prefix)
    query = select(Loan).where(Loan.number == (normal or ""))
    loan = uow.session.scalar(query.with_for_update() if lock else query)
    if loan is None:
        raise NotFound("loan.not_found", number=(normal or number.strip())[:10])
    return loan


def ask(uow: UnitOfWork, *, borrower_id: int, number: str, phone: str, amount: int,
        now: datetime) -> Guarantee:
    """The borrower names a member of their own group as guarantor of `amount` of
    their loan; the guarantor is told by SMS and answers by USSD."""
    settings = uow.settings
    with uow:
        loan = _loan(uow, number)
        if loan.borrower_id != borrower_id:
            raise NotFound("loan.not_found", number=loan.number)
        if loan.status not in ASKABLE:
            raise NotAllowed("guarantee.loan_closed", number=loan.number)
        guarantor = find_by_phone(uow, phone)
        group = group_of(uow, borrower_id)
        if group is None:
            raise NotAllowed("group.none")
        if guarantor is None or group_of(uow, guarantor.id) != group:
            raise NotAllowed("guarantee.not_in_group", group=group.name)
        if guarantor.id == borrower_id:
            raise NotAllowed("guarantee.self")
        unit = settings.app.minor_scale
        if amount % unit:
            raise InvalidInput("pledge.whole_units", currency=settings.app.currency_label)
        low = settings.minor(settings.loan.min_pledge)
        if not low <= amount <= loan.amount:
            raise InvalidInput("guarantee.amount_range", min=settings.fmt(low),
                               max=settings.fmt(loan.amount))
        if uow.session.scalar(select(Guarantee.id).where(
                Guarantee.loan_id == loan.id, Guarantee.guarantor_id == guarantor.id)):
            raise Conflict("guarantee.already", name=guarantor.first_name)
        taken = waiting_codes(uow, guarantor.id) | set(uow.session.scalars(
            select(Pledge.code).where(Pledge.lender_id == guarantor.id,
                                      Pledge.status == PledgeStatus.PROPOSED)))
        guarantee = Guarantee(loan_id=loan.id, guarantor_id=guarantor.id, amount=amount,
                              code=new_code(taken), status=GuaranteeStatus.ASKED, held=0,
                              holds=0, called=0, created_at=now)
        uow.session.add(guarantee)
        uow.session.flush()
        borrower = loan.borrower
        outbox.queue(uow, [outbox.sms_to(
            guarantor, f"guarantee_asked:{guarantee.id}", "sms.guarantee_asked",
            Purpose.NOTICE, borrower=borrower.first_name, loan=loan.number,
            amount=settings.fmt(amount), code=guarantee.code,
            service_code=settings.ussd.service_code)], now)
        uow.commit()
        return guarantee


def waiting_codes(uow: UnitOfWork, member_id: int) -> set[str]:
    """The codes of the guarantees waiting for this member's answer."""
    return set(uow.session.scalars(select(Guarantee.code).where(
        Guarantee.guarantor_id == member_id, Guarantee.status == GuaranteeStatus.ASKED)))


@dataclass(frozen=True)
class Request:
    """A guarantee as its guarantor reads it before answering: the exact exposure."""

    id: int
    borrower: str
    loan: str
    loan_amount: int
    amount: int
    weeks: int
    status: GuaranteeStatus


def _request(guarantee: Guarantee, loan: Loan) -> Request:
    return Request(guarantee.id, loan.borrower.first_name, loan.number or "", loan.amount,
                   guarantee.amount, loan.term_weeks, guarantee.status)


def requests_of(uow: UnitOfWork, guarantor_id: int) -> list[Request]:
    """Guarantees waiting for this member's answer, oldest first."""
    with uow:
        rows = uow.session.execute(
            select(Guarantee, Loan).join(Loan, Loan.id == Guarantee.loan_id)
            .where(Guarantee.guarantor_id == guarantor_id,
                   Guarantee.status == GuaranteeStatus.ASKED, Loan.status.in_(ASKABLE))
            .order_by(Guarantee.id)).all()
        return [_request(g, loan) for g, loan in rows]


def _mine(uow: UnitOfWork, guarantor_id: int, guarantee_id: int) -> tuple[Guarantee, Loan]:
    guarantee = uow.session.get(Guarantee, guarantee_id)
    if guarantee is None or guarantee.guarantor_id != guarantor_id:
        raise NotFound("guarantee.not_found")
    loan = uow.session.get(Loan, guarantee.loan_id, with_for_update=True)
    assert loan is not None
    uow.session.refresh(guarantee, with_for_update=True)
    return guarantee, loan


def consent(uow: UnitOfWork, *, guarantor_id: int, guarantee_id: int, pin: str,
            now: datetime) -> Guarantee:
    """The guarantor agrees with their PIN (USSD): the hold is placed on their wallet.
    A replay returns the guarantee as it is."""
    check_pin(uow, guarantor_id, pin, now)
    with uow:
        guarantee, loan = _mine(uow, guarantor_id, guarantee_id)
        done = _consent(uow, guarantee, loan, now)
        uow.commit()
        return done


def _by_code(uow: UnitOfWork, phone: str, code: str) -> tuple[Guarantee, Loan]:
    """The guarantee a member's `YES <code>` or `NO <code>` answers (a waiting one
    first); NotFound in the words of a pledge code, as the member typed it."""
    member = find_by_phone(uow, phone)
    clean = (code or "").strip()
    found = None if member is None or not clean.isdigit() else uow.session.scalar(
        select(Guarantee.id).where(Guarantee.guarantor_id == member.id,
                                   Guarantee.code == clean)
        .order_by((Guarantee.status == GuaranteeStatus.ASKED).desc(), Guarantee.id.desc())
        .limit(1))
    if member is None or found is None:
        raise NotFound("pledge.code_invalid", code=clean[:8])
    return _mine(uow, member.id, found)


def consent_by_code(uow: UnitOfWork, *, phone: str, code: str, now: datetime) -> Guarantee:
    """`YES <code>` from the guarantor's own phone, after the SMS that told them the
    exposure: the same consent, refused while their PIN is locked (as a pledge's YES)."""
    with uow:
        guarantee, loan = _by_code(uow, phone, code)
        guarantor = guarantee.guarantor
        if guarantee.status == GuaranteeStatus.ASKED and is_pin_locked(guarantor, now):
            raise PinLocked(until=pin_lock_text(guarantor, uow.settings))
        done = _consent(uow, guarantee, loan, now)
        uow.commit()
        return done


def decline_by_code(uow: UnitOfWork, *, phone: str, code: str, now: datetime) -> Guarantee:
    """`NO <code>`: the guarantor declines by SMS."""
    with uow:
        guarantee, _ = _by_code(uow, phone, code)
        return decline(uow, guarantor_id=guarantee.guarantor_id, guarantee_id=guarantee.id,
                       now=now)


def _consent(uow: UnitOfWork, guarantee: Guarantee, loan: Loan, now: datetime) -> Guarantee:
    """Inside the consenting use case, with the loan and the guarantee locked."""
    settings = uow.settings
    if guarantee.status == GuaranteeStatus.HELD:
        return guarantee
    if guarantee.status != GuaranteeStatus.ASKED:
        raise NotAllowed("guarantee.answered")
    if loan.status not in ASKABLE:
        raise NotAllowed("guarantee.loan_closed", number=loan.number)
    amount = exposure(guarantee.amount, loan, settings.app.minor_scale)
    if amount <= 0:
        raise NotAllowed("guarantee.loan_closed", number=loan.number)
    try:
        _hold(uow, guarantee, loan, amount, now)
    except ledger.InsufficientFunds as exc:
        raise ledger.InsufficientFunds(
            available=settings.fmt(int(exc.params["available"]))) from None
    guarantee.status = GuaranteeStatus.HELD
    guarantee.answered_at = now
    loan.guaranteed += guarantee.amount
    guarantor = guarantee.guarantor
    outbox.queue(uow, [
        outbox.sms_to(guarantor, f"guarantee_held:{guarantee.id}", "sms.guarantee_held",
                      Purpose.RECEIPT, amount=settings.fmt(amount), loan=loan.number,
                      borrower=loan.borrower.first_name),
        outbox.sms_to(loan.borrower, f"guarantee_yes:{guarantee.id}",
                      "sms.guarantee_agreed", Purpose.NOTICE, name=guarantor.first_name,
                      amount=settings.fmt(guarantee.amount), loan=loan.number)], now)
    return guarantee


def decline(uow: UnitOfWork, *, guarantor_id: int, guarantee_id: int,
            now: datetime) -> Guarantee:
    """The guarantor says no: nothing is held; the borrower is told, kindly."""
    with uow:
        guarantee, loan = _mine(uow, guarantor_id, guarantee_id)
        if guarantee.status == GuaranteeStatus.DECLINED:
            return guarantee
        if guarantee.status != GuaranteeStatus.ASKED:
            raise NotAllowed("guarantee.answered")
        guarantee.status = GuaranteeStatus.DECLINED
        guarantee.answered_at = guarantee.closed_at = now
        outbox.queue(uow, [outbox.sms_to(
            loan.borrower, f"guarantee_no:{guarantee.id}", "sms.guarantee_declined",
            Purpose.NOTICE, name=guarantee.guarantor.first_name, loan=loan.number)], now)
        uow.commit()
        return guarantee


# ---------------------------------------------------------------- holds

def _hold(uow: UnitOfWork, guarantee: Guarantee, loan: Loan, amount: int,
          now: datetime) -> None:
    """A new hold of `amount` on the guarantor's wallet (the only one it has now)."""
    assert loan.account_id is not None
    number = guarantee.holds + 1
    hold = ledger.place_hold(uow, ledger.Movement(
        key=f"guarantee:{guarantee.id}:{number}",
        debit_id=ledger.wallet_id(uow, guarantee.guarantor_id), credit_id=loan.account_id,
        amount=amount, code=TransferCode.GUARANTEE_HOLD, loan_id=loan.id), now,
        expires_at=None)
    guarantee.hold_id, guarantee.held, guarantee.holds = hold.id, amount, number


def _current(uow: UnitOfWork, guarantee: Guarantee) -> ledger.Hold:
    row = uow.session.execute(select(*ledger.HOLD_COLUMNS).where(
        Transfer.id == guarantee.hold_id)).one()
    return ledger.Hold(*row)


def _held(uow: UnitOfWork, loan_id: int) -> list[Guarantee]:
    return list(uow.session.scalars(select(Guarantee).where(
        Guarantee.loan_id == loan_id, Guarantee.status == GuaranteeStatus.HELD)
        .order_by(Guarantee.id).with_for_update()))


def wallets(uow: UnitOfWork, loan_id: int) -> list[int]:
    """The wallets a loan's guarantees hold money on: a use case about to change them
    with other accounts locks them all first, in id order."""
    return list(uow.session.scalars(
        select(Account.id).join(Guarantee, and_(Account.member_id == Guarantee.guarantor_id,
                                                Account.kind == AccountKind.WALLET))
        .where(Guarantee.loan_id == loan_id, Guarantee.status == GuaranteeStatus.HELD)))


def follow_repayment(uow: UnitOfWork, loan: Loan, now: datetime) -> None:
    """Inside a repayment: each hold shrinks to the exposure left; a loan repaid in
    full releases them all."""
    if loan.status == LoanStatus.REPAID:
        release_all(uow, loan, now)
        return
    unit = uow.settings.app.minor_scale
    for guarantee in _held(uow, loan.id):
        left = exposure(guarantee.amount, loan, unit)
        if left >= guarantee.held:
            continue
        ledger.resolve_holds(uow, [_current(uow, guarantee)], now, to=HoldState.VOIDED)
        if left > 0:
            _hold(uow, guarantee, loan, left, now)
        else:
            _close(guarantee, GuaranteeStatus.RELEASED, now)


def _close(guarantee: Guarantee, status: GuaranteeStatus, now: datetime) -> None:
    guarantee.status = status
    guarantee.held = 0
    guarantee.closed_at = now


def release_all(uow: UnitOfWork, loan: Loan, now: datetime) -> None:
    """The loan was repaid, cancelled or expired: every hold is voided, once, and each
    guarantor told; guarantees never answered lapse."""
    held = _held(uow, loan.id)
    if held:
        ledger.resolve_holds(uow, [_current(uow, g) for g in held], now, to=HoldState.VOIDED)
    for guarantee in held:
        _close(guarantee, GuaranteeStatus.RELEASED, now)
    for guarantee in uow.session.scalars(select(Guarantee).where(
            Guarantee.loan_id == loan.id, Guarantee.status == GuaranteeStatus.ASKED)):
        _close(guarantee, GuaranteeStatus.LAPSED, now)
    outbox.queue(uow, [outbox.sms_to(
        g.guarantor, f"guarantee_released:{g.id}", "sms.guarantee_released", Purpose.NOTICE,
        loan=loan.number, borrower=loan.borrower.first_name) for g in held], now)


def call(uow: UnitOfWork, loan: Loan, now: datetime) -> int:
    """The loan defaulted: the holds are posted (called) and the money paid on to the
    lenders pro rata to what each is still owed; returns what was called."""
    settings = uow.settings
    unit = settings.app.minor_scale
    held = _held(uow, loan.id)
    if not held:
        return 0
    lenders = [(pid, lender_id, owed, wallet_id) for pid, lender_id, owed, wallet_id in
               uow.session.execute(
                   select(Pledge.id, Pledge.lender_id, Pledge.entitled - Pledge.repaid,
                          Account.id)
                   .join(Account, and_(Account.member_id == Pledge.lender_id,
                                       Account.kind == AccountKind.WALLET))
                   .where(Pledge.loan_id == loan.id, Pledge.status == PledgeStatus.POSTED)
                   .order_by(Pledge.id)) if owed > 0]
    assert loan.account_id is not None
    ledger.lock_accounts(uow, [loan.account_id, *wallets(uow, loan.id),
                               *(w for *_, w in lenders)])
    take = min(sum(owed for _, _, owed, _ in lenders), sum(g.held for g in held))
    shares = largest_remainder_whole(take, [g.held for g in held], unit)
    for guarantee, share in zip(held, shares, strict=True):
        current = _current(uow, guarantee)
        if share == guarantee.held:
            ledger.resolve_holds(uow, [current], now, to=HoldState.POSTED)
        else:  # only part is needed: release the hold, and call the part alone
            ledger.resolve_holds(uow, [current], now, to=HoldState.VOIDED)
            if share:
                _hold(uow, guarantee, loan, share, now)
                ledger.resolve_holds(uow, [_current(uow, guarantee)], now,
                                     to=HoldState.POSTED)
        guarantee.called = share
        _close(guarantee, GuaranteeStatus.CALLED if share else GuaranteeStatus.RELEASED, now)
    parts = largest_remainder_whole(take, [owed for _, _, owed, _ in lenders], unit)
    legs = [(f"called:{loan.id}:{pid}", wallet_id, part)
            for (pid, _, _, wallet_id), part in zip(lenders, parts, strict=True) if part]
    ledger.fan_out(uow, debit_id=loan.account_id, legs=legs, code=TransferCode.ALLOCATION,
                   now=now, loan_id=loan.id)
    add_to_rows(uow.session, _PLEDGES, "id",
                [{"id": pid, "repaid": part}
                 for (pid, *_), part in zip(lenders, parts, strict=True) if part])
    for loaded in uow.loaded(Pledge, [pid for pid, *_ in lenders]):
        uow.session.expire(loaded, ["repaid"])
    loan.repaid += take
    left = take
    for inst in loan.installments:  # oldest first, as a repayment is applied
        part = min(left, inst.remaining)
        inst.paid += part
        left -= part
        if inst.remaining == 0 and inst.paid_at is None:
            inst.paid_at = now
    names = {m.id: m for m in uow.session.scalars(select(Member).where(
        Member.id.in_([lender_id for _, lender_id, _, _ in lenders])))}
    messages = [outbox.sms_to(g.guarantor, f"guarantee_called:{g.id}", "sms.guarantee_called",
                              Purpose.NOTICE, amount=settings.fmt(share), loan=loan.number,
                              borrower=loan.borrower.first_name)
                for g, share in zip(held, shares, strict=True) if share]
    messages += [outbox.sms_to(names[lender_id], f"called_lender:{loan.id}:{pid}",
                               "sms.guarantee_paid_lender", Purpose.RECEIPT,
                               amount=settings.fmt(part), loan=loan.number)
                 for (pid, lender_id, _, _), part in zip(lenders, parts, strict=True) if part]
    if take:
        messages.append(outbox.sms_to(loan.borrower, f"called_borrower:{loan.id}",
                                      "sms.guarantee_called_borrower", Purpose.NOTICE,
                                      amount=settings.fmt(take), loan=loan.number))
    outbox.queue(uow, messages, now)
    return take


def pledging_open(loan: Loan) -> bool:
    """Lenders may pledge once guarantors cover what a guaranteed first loan needs."""
    return loan.guaranteed >= loan.guarantee_needed

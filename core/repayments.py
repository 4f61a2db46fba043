"""Money coming in and going out after disbursement: mobile-money receipts (repayments
and wallet top-ups), allocation to lenders, arrears, and wallet withdrawals.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import BigInteger, and_, cast, func, select, update
from sqlalchemy.exc import IntegrityError

from core import guarantees, ledger, outbox
from core.allocation import largest_remainder_whole
from core.bulk import add_to_rows
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput
from core.loans import find_loan
from core.members import after_loan_repaid, freeze_limit, get_member
from core.models import (
    BEING_REPAID,
    OWING,
    Account,
    AccountKind,
    Installment,
    Loan,
    LoanStatus,
    Member,
    MemberStatus,
    Payment,
    PaymentKind,
    Pledge,
    PledgeStatus,
    Purpose,
    Transfer,
    TransferCode,
)
from core.numbers import normalise_loan_number
from core.phones import try_normalise

_PLEDGES = Pledge.__table__
TELL_LENDERS = "tell_lenders"  # the follow-up that writes the lenders' notices


@dataclass(frozen=True)
class Receipt:
    payment: Payment
    created: bool


def record_payment(uow: UnitOfWork, *, provider: str, transaction_id: str, phone: str | None,
                   amount: int, currency: str, reference: str, occurred_at: datetime,
                   now: datetime) -> Receipt:
    """A mobile-money receipt: a repayment (reference = loan number), a wallet top-up
    (reference = a member's phone), or held in suspense when it matches nothing.

    Keyed by (provider, transaction_id): a replay changes nothing; the same id with
    different fields raises Conflict.
    """
    settings = uow.settings
    provider = provider.strip().lower()
    transaction_id = transaction_id.strip()
    if not provider or not transaction_id or len(transaction_id) > 64 or len(provider) > 20:
        raise InvalidInput("payment.invalid")
    if amount <= 0:
        raise InvalidInput("ledger.amount_not_positive")
    if currency.upper() != settings.app.currency:
        raise InvalidInput("payment.currency", currency=settings.app.currency)
    payer = try_normalise(phone or "", settings.app.default_region)
    with uow:
        existing = _payment(uow, provider, transaction_id)
        if existing is None:
            payment = Payment(provider=provider, transaction_id=transaction_id, phone=payer,
                              amount=amount, currency=settings.app.currency,
                              reference=reference.strip()[:64], kind=PaymentKind.UNMATCHED,
                              occurred_at=occurred_at, created_at=now, fee_part=0,
                              lender_part=0, refund_part=0, lenders_told_at=now)
            try:
                with uow.session.begin_nested():
                    uow.session.add(payment)
                    uow.session.flush()
            except IntegrityError:  # the same receipt, recorded at this moment by another
                existing = _payment(uow, provider, transaction_id)
                assert existing is not None
        if existing is not None:
            if (existing.amount, existing.reference) != (amount, reference.strip()[:64]):
                raise Conflict("payment.replayed_differently")
            return Receipt(existing, created=False)
        loan = _loan_for_reference(uow, payment.reference)
        member = None if loan else _member_for_reference(uow, payment.reference)
        if loan is not None and loan.status in OWING:
            payment.kind, payment.loan_id = PaymentKind.REPAYMENT, loan.id
            payment.member_id = loan.borrower_id
            assert loan.account_id is not None
            credit_id = loan.account_id
        elif (owner := member or (loan.borrower if loan is not None else None)) is not None \
                and owner.status != MemberStatus.ERASED:
            # A payment to a closed loan, or a top-up: it belongs in that member's wallet
            # (not an erased member's: it waits in suspense for an operator to return it).
            payment.kind, payment.member_id = PaymentKind.TOPUP, owner.id
            credit_id = ledger.wallet(uow, owner.id).id
        else:
            credit_id = ledger.system_account(uow, ledger.SUSPENSE).id
        mobile = ledger.system_account(uow, ledger.mobile_money_code(provider))
        lenders: list[_Lender] = []
        if payment.kind == PaymentKind.REPAYMENT:
            assert loan is not None
            lenders = lock_for_repayment(uow, loan, payment.amount, [mobile.id])
        ledger.transfer(uow, ledger.Movement(
            key=f"receipt:{provider}:{transaction_id}", debit_id=mobile.id,
            credit_id=credit_id,
            amount=amount, code=TransferCode.RECEIPT, payment_id=payment.id,
            loan_id=payment.loan_id), now)
        if payment.kind == PaymentKind.REPAYMENT:
            assert loan is not None
            _repay(uow, loan, payment, lenders, now)
        elif payment.kind == PaymentKind.TOPUP:
            owner = get_member(uow, payment.member_id or 0)
            outbox.queue(uow, [outbox.sms_to(
                owner, f"topup:{payment.id}", "sms.topup_receipt", Purpose.RECEIPT,
                amount=settings.fmt(amount), receipt=payment.transaction_id,
                balance=settings.fmt(ledger.wallet(uow, owner.id).available))], now)
        elif payer is not None:
            outbox.queue(uow, [outbox.Sms(
                key=f"unmatched:{payment.id}", phone=payer, language="en",
                template="sms.payment_unmatched", purpose=Purpose.RECEIPT,
                params={"amount": settings.fmt(amount), "receipt": payment.transaction_id,
                        "reference": payment.reference[:20]})], now)
        uow.commit()
        return Receipt(payment, created=True)


def _payment(uow: UnitOfWork, provider: str, transaction_id: str) -> Payment | None:
    return uow.session.scalar(select(Payment).where(
        Payment.provider == provider, Payment.transaction_id == transaction_id))


def refusal(uow: UnitOfWork, *, reference: str, amount: int, max_amount: int) -> str | None:
    """Why a payment with this reference and amount would not be taken, before it is
    made (M-Pesa's C2B validation): `account` when the reference names neither a loan
    nor a member, `amount` when it is not from one unit to `max_amount`; None when it
    would be taken."""
    if not 1 <= amount <= max_amount:
        return "amount"
    with uow:
        reference = reference.strip()[:64]
        named = (normalise_loan_number(reference, uow.settings.loan.number_prefix) is not None
                 and _loan_for_reference(uow, reference) is not None)
        if not named and _member_for_reference(uow, reference) is None:
            return "account"
        return None


def _loan_for_reference(uow: UnitOfWork, reference: str) -> Loan | None:
    if normalise_loan_number(reference, uow.settings.loan.number_prefix) is None:
        return None
    try:
        return find_loan(uow, reference, lock=True)
    except Exception:  # noqa: BLE001 - a reference that names no loan is simply not a loan
        return None


def _member_for_reference(uow: UnitOfWork, reference: str) -> Member | None:
    phone = try_normalise(reference, uow.settings.app.default_region)
    if phone is None:
        return None
    return uow.session.scalar(select(Member).where(Member.phone == phone))


_Lender = tuple[int, int, int]  # a posted pledge: its id, what it is still owed, the wallet


def _lenders(uow: UnitOfWork, loan: Loan) -> list[_Lender]:
    """The loan's posted pledges in id order, each with what it is still owed and the
    id of its lender's wallet."""
    return [(pledge_id, owed, wallet_id) for pledge_id, owed, wallet_id in uow.session.execute(
        select(Pledge.id, Pledge.entitled - Pledge.repaid, Account.id)
        .join(Account, and_(Account.member_id == Pledge.lender_id,
                            Account.kind == AccountKind.WALLET))
        .where(Pledge.loan_id == loan.id, Pledge.status == PledgeStatus.POSTED)
        .order_by(Pledge.id))]


def lock_for_repayment(uow: UnitOfWork, loan: Loan, amount: int,
                       sources: list[int]) -> list[_Lender]:
    """Lock, in id order, every account a repayment of `amount` to `loan` changes (the
    `sources` it comes from too), and return the loan's lenders (`_lenders`).

    The receipt, the fee, any refund and the lenders' shares change accounts in several
    steps: every lock is taken first. Otherwise the receipt would hold the provider's
    account while waiting for a lender's wallet that a top-up holds, and the top-up
    waits for the provider's account: a deadlock."""
    lenders = _lenders(uow, loan)
    assert loan.account_id is not None
    ledger.lock_accounts(uow, [
        *sources, loan.account_id, ledger.system_account(uow, ledger.FEES).id,
        *(wallet_id for _, _, wallet_id in lenders),
        *guarantees.wallets(uow, loan.id),
        *([ledger.wallet_id(uow, loan.borrower_id)] if amount > loan.outstanding else [])])
    return lenders


def apply_repayment(uow: UnitOfWork, loan: Loan, payment: Payment, lenders: list[_Lender],
                    now: datetime) -> None:
    """Inside a use case, once `payment` is in the loan's escrow and the accounts are
    locked (`lock_for_repayment`): split it as any repayment is (`_repay`)."""
    _repay(uow, loan, payment, lenders, now)


def _repay(uow: UnitOfWork, loan: Loan, payment: Payment, lenders: list[_Lender],
           now: datetime) -> None:
    """Apply a repayment: installments oldest first, then allocate to the fee and every
    lender (`_lenders`) by what each is still owed (largest remainder); any excess to
    the wallet.

    The lenders hear of their shares after commit (`tell_lenders`): ten thousand notices
    need not hold the payment and the loan's lock while they are written.
    """
    settings = uow.settings
    applied = min(payment.amount, loan.outstanding)
    refund = payment.amount - applied
    fee_owed = loan.fee - loan.fee_paid
    shares = largest_remainder_whole(applied, [fee_owed] + [owed for _, owed, _ in lenders],
                                     settings.app.minor_scale)
    fee_share, lender_shares = shares[0], shares[1:]
    moves: list[ledger.Movement] = []
    assert loan.account_id is not None
    if fee_share:
        moves.append(ledger.Movement(
            key=f"fee:{payment.id}", debit_id=loan.account_id, code=TransferCode.FEE,
            credit_id=ledger.system_account(uow, ledger.FEES).id, amount=fee_share,
            loan_id=loan.id, payment_id=payment.id))
    if refund:
        moves.append(ledger.Movement(
            key=f"refund:{payment.id}", debit_id=loan.account_id, code=TransferCode.REFUND,
            credit_id=ledger.wallet(uow, loan.borrower_id).id, amount=refund, loan_id=loan.id,
            payment_id=payment.id))
    ledger.transfer_many(uow, moves, now)
    legs, paid_pledges = [], []
    for (pledge_id, _, wallet_id), share in zip(lenders, lender_shares, strict=True):
        if share:
            legs.append((f"alloc:{payment.id}:{pledge_id}", wallet_id, share))
            paid_pledges.append({"id": pledge_id, "repaid": share})
    ledger.fan_out(uow, debit_id=loan.account_id, legs=legs, code=TransferCode.ALLOCATION,
                   now=now, loan_id=loan.id, payment_id=payment.id)
    add_to_rows(uow.session, _PLEDGES, "id", paid_pledges)
    payment.fee_part, payment.lender_part, payment.refund_part = (
        fee_share, applied - fee_share, refund)
    if paid_pledges:
        payment.lenders_told_at = None
        uow.follow_up(TELL_LENDERS, payment.id)
    loan.fee_paid += fee_share
    loan.repaid += applied
    on_time = _pay_installments(loan, applied, now, settings.zone)
    borrower = loan.borrower
    messages = []
    if loan.outstanding == 0:
        loan.status = LoanStatus.REPAID
        loan.closed_at = now
        after_loan_repaid(borrower, settings, on_time=on_time)
        template = "sms.repayment_overpaid" if refund else "sms.repayment_receipt"
        messages.append(outbox.sms_to(borrower, f"repaid:{loan.id}", "sms.loan_repaid",
                                      Purpose.NOTICE, loan=loan.number,
                                      limit=settings.fmt(borrower.credit_limit)))
    else:
        template = "sms.repayment_receipt"
        loan.status = (LoanStatus.IN_ARREARS if _overdue(loan, now, settings.zone)
                       else LoanStatus.REPAYING)
    guarantees.follow_repayment(uow, loan, now)
    messages.insert(0, outbox.sms_to(
        borrower, f"receipt:{payment.id}", template, Purpose.RECEIPT,
        amount=settings.fmt(payment.amount), loan=loan.number, receipt=payment.transaction_id,
        outstanding=settings.fmt(loan.outstanding), refund=settings.fmt(refund)))
    outbox.queue(uow, messages, now)


def tell_lenders(uow: UnitOfWork, payment_id: int, now: datetime) -> int:
    """Write each lender's notice of their share of one repayment, once (a second call
    writes nothing); return how many were written.

    One notice per lender, even one who pledged twice: what this payment brought them,
    and what they had received from the loan up to and including it. Payments to one
    loan are serialised by its row lock, so its allocation transfers are numbered in
    the order they happened; "up to" is then "transfer id at most this payment's last".
    """
    with uow:
        session = uow.session
        payment = session.get(Payment, payment_id, with_for_update=True)
        if payment is None or payment.lenders_told_at is not None:
            return 0
        payment.lenders_told_at = now
        loan = session.get(Loan, payment.loan_id) if payment.loan_id else None
        last = session.scalar(select(func.max(Transfer.id)).where(
            Transfer.payment_id == payment.id, Transfer.code == TransferCode.ALLOCATION))
        if loan is None or last is None:
            uow.commit()
            return 0
        # Three plain queries joined here: one statement joining two aggregates was planned
        # as nested loops on fresh tables and ran for minutes over 10,000 lenders.
        this_payment = Transfer.payment_id == payment.id
        shares = {wallet_id: (amount, total) for wallet_id, amount, total in session.execute(
            select(Transfer.credit_account_id,
                   _total(func.sum(Transfer.amount).filter(this_payment)),
                   _total(func.sum(Transfer.amount)))
            .where(Transfer.loan_id == loan.id, Transfer.code == TransferCode.ALLOCATION,
                   Transfer.id <= last)
            .group_by(Transfer.credit_account_id)) if amount}
        entitled = dict(session.execute(
            select(Pledge.lender_id, _total(func.sum(Pledge.entitled)))
            .where(Pledge.loan_id == loan.id, Pledge.status == PledgeStatus.POSTED)
            .group_by(Pledge.lender_id)).tuples().all())
        lenders = session.execute(
            select(Account.id, Member.id, Member.phone, Member.language)
            .join(Member, Member.id == Account.member_id)
            .where(Account.kind == AccountKind.WALLET,
                   Account.member_id.in_(select(Pledge.lender_id).where(
                       Pledge.loan_id == loan.id, Pledge.status == PledgeStatus.POSTED)))
            .order_by(Member.id)).all()
        settings = uow.settings
        first = loan.borrower.first_name
        messages = [outbox.Sms(
            key=f"lender_repaid:{payment.id}:{member_id}", phone=phone, language=language,
            member_id=member_id, template="sms.lender_repaid", purpose=Purpose.RECEIPT,
            params={"borrower": first, "loan": loan.number,
                    "amount": settings.fmt(shares[wallet_id][0]),
                    "received": settings.fmt(shares[wallet_id][1]),
                    "entitled": settings.fmt(entitled[member_id])})
            for wallet_id, member_id, phone, language in lenders if wallet_id in shares]
        outbox.queue(uow, messages, now)
        uow.commit()
        return len(messages)


def _total(column: Any) -> Any:
    """A SUM of money as an integer (PostgreSQL sums BIGINT to NUMERIC)."""
    return cast(column, BigInteger)


def untold_payments(uow: UnitOfWork, before: datetime, *, limit: int = 100) -> list[int]:
    """Repayments recorded before `before` whose lenders have not been told yet."""
    with uow:
        return list(uow.session.scalars(
            select(Payment.id).where(Payment.lenders_told_at.is_(None),
                                     Payment.created_at <= before)
            .order_by(Payment.id).limit(limit)))


def _pay_installments(loan: Loan, amount: int, now: datetime, zone: object) -> bool:
    """Oldest installment first; overpayment flows to the next. True when every
    installment paid so far was paid on or before its due date."""
    today = now.astimezone(zone).date()  # type: ignore[arg-type]
    left = amount
    for inst in loan.installments:
        if left == 0:
            break
        take = min(left, inst.remaining)
        if take:
            inst.paid += take
            left -= take
            if inst.remaining == 0:
                inst.paid_at = now
                if today > inst.due_on:
                    inst.late = True
    return not any(i.late for i in loan.installments)


def _overdue(loan: Loan, now: datetime, zone: tzinfo) -> bool:
    """An installment is overdue from the day after its due date, in local time (as
    mark_arrears counts it)."""
    today = now.astimezone(zone).date()
    return any(i.remaining > 0 and i.due_on < today for i in loan.installments)


@dataclass(frozen=True)
class Standing:
    """Where a repaying loan stands today: next installment and how far behind."""

    next_due: date | None
    next_amount: int
    behind: int


def standing(loan: Loan, today: date) -> Standing:
    behind = sum(i.remaining for i in loan.installments if i.due_on < today)
    upcoming = next((i for i in loan.installments if i.remaining > 0), None)
    return Standing(next_due=upcoming.due_on if upcoming else None,
                    next_amount=upcoming.remaining if upcoming else 0, behind=behind)


def mark_arrears(uow: UnitOfWork, now: datetime) -> list[str]:
    """Loans with an installment past due move to in_arrears (limits freeze); those
    behind longer than `loan.default_after_days` move to defaulted."""
    settings = uow.settings
    today = now.astimezone(settings.zone).date()
    with uow:
        late_rows = uow.session.execute(
            select(Loan.id, Installment.id, Installment.due_on).join(Installment)
            .where(Loan.status.in_(BEING_REPAID),
                   Installment.due_on < today, Installment.paid < Installment.amount)).all()
        if not late_rows:
            return []
        oldest: dict[int, date] = {}
        for loan_id, _, due_on in late_rows:
            oldest[loan_id] = min(due_on, oldest.get(loan_id, due_on))
        uow.session.execute(update(Installment).where(
            Installment.id.in_([row[1] for row in late_rows])).values(late=True)
            .execution_options(synchronize_session=False))
        changed = []
        limit = timedelta(days=settings.loan.default_after_days)
        for loan in uow.session.scalars(select(Loan).where(Loan.id.in_(list(oldest)))
                                        .with_for_update()):
            target = (LoanStatus.DEFAULTED if today - oldest[loan.id] > limit
                      else LoanStatus.IN_ARREARS)
            if loan.status != target:
                loan.status = target
                freeze_limit(loan.borrower)
                changed.append(loan.number or "")
                if target == LoanStatus.DEFAULTED:
                    guarantees.call(uow, loan, now)
        uow.commit()
        return changed

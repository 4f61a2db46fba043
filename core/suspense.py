"""Receipts held in suspense (a reference that named no loan and no member) leave it
once, by an operator's decision: matched to a loan (a repayment, split as any other)
or to a member's wallet (a top-up), or marked to be refunded to the payer.

A match is one ledger transfer out of the suspense account, keyed by the payment
(`suspense_match:<payment id>`), so it can never happen twice, in the same
transaction as the repayment's split and the audit row. The receipt transfer itself
is never touched: `harambee check` still finds exactly one per payment.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from core import audit, ledger, outbox, repayments
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput, NotFound
from core.loans import find_loan
from core.members import find_by_phone
from core.models import OWING, Payment, PaymentKind, Purpose, TransferCode
from core.numbers import normalise_loan_number
from core.phones import try_normalise


def waiting(uow: UnitOfWork, *, limit: int = 500) -> Sequence[Payment]:
    """Receipts still in suspense (not matched, not marked for refund), oldest first."""
    with uow:
        return list(uow.session.scalars(
            select(Payment).where(Payment.kind == PaymentKind.UNMATCHED,
                                  Payment.refund_marked_at.is_(None))
            .order_by(Payment.id).limit(limit)))


def _waiting_payment(uow: UnitOfWork, payment_id: int) -> Payment:
    payment = uow.session.get(Payment, payment_id, with_for_update=True)
    if payment is None:
        raise NotFound("suspense.not_found")
    if payment.kind != PaymentKind.UNMATCHED or payment.refund_marked_at is not None:
        raise Conflict("suspense.not_waiting")
    return payment


def match(uow: UnitOfWork, actor: audit.Actor, *, payment_id: int, target: str, reason: str,
          now: datetime) -> Payment:
    """Move a receipt out of suspense to what `target` names: a loan number (a loan
    still owed: a repayment; a closed one: its borrower's wallet) or a member's phone
    (a top-up). The payer is told as for any receipt."""
    reason = audit.reason_given(reason)
    target = target.strip()
    settings = uow.settings
    with uow:
        payment = _waiting_payment(uow, payment_id)
        loan = None
        if normalise_loan_number(target, settings.loan.number_prefix) is not None:
            try:
                loan = find_loan(uow, target, lock=True)
            except NotFound:
                loan = None
        phone = None if loan else try_normalise(target, settings.app.default_region)
        member = find_by_phone(uow, phone) if phone else None
        if loan is None and member is None:
            raise InvalidInput("suspense.no_target", target=target[:20])
        suspense = ledger.system_account(uow, ledger.SUSPENSE)
        before = {"kind": str(payment.kind), "reference": payment.reference}
        if loan is not None and loan.status in OWING:
            assert loan.account_id is not None
            lenders = repayments.lock_for_repayment(uow, loan, payment.amount, [suspense.id])
            payment.kind, payment.loan_id = PaymentKind.REPAYMENT, loan.id
            payment.member_id = loan.borrower_id
            ledger.transfer(uow, ledger.Movement(
                key=f"suspense_match:{payment.id}", debit_id=suspense.id,
                credit_id=loan.account_id, amount=payment.amount,
                code=TransferCode.SUSPENSE_MATCH, payment_id=payment.id, loan_id=loan.id), now)
            repayments.apply_repayment(uow, loan, payment, lenders, now)
        else:
            owner = member or loan.borrower  # type: ignore[union-attr]
            payment.kind, payment.member_id = PaymentKind.TOPUP, owner.id
            wallet = ledger.wallet(uow, owner.id)
            ledger.transfer(uow, ledger.Movement(
                key=f"suspense_match:{payment.id}", debit_id=suspense.id, credit_id=wallet.id,
                amount=payment.amount, code=TransferCode.SUSPENSE_MATCH,
                payment_id=payment.id), now)
            outbox.queue(uow, [outbox.sms_to(
                owner, f"topup:{payment.id}", "sms.topup_receipt", Purpose.RECEIPT,
                amount=settings.fmt(payment.amount), receipt=payment.transaction_id,
                balance=settings.fmt(ledger.wallet(uow, owner.id).available))], now)
        payment.matched_at = now
        audit.record(uow, actor, "suspense.match", f"payment:{payment.id}", now=now,
                     before=before,
                     after={"kind": str(payment.kind), "loan": loan.number if loan else None,
                            "member_id": payment.member_id, "amount": payment.amount},
                     reason=reason)
        uow.commit()
        return payment


def mark_refund(uow: UnitOfWork, actor: audit.Actor, *, payment_id: int, reason: str,
                now: datetime) -> Payment:
    """Mark a receipt in suspense to be sent back to its payer (by finance, outside
    Harambee); it stays in the suspense account until that refund is recorded."""
    reason = audit.reason_given(reason)
    with uow:
        payment = _waiting_payment(uow, payment_id)
        payment.refund_marked_at = now
        audit.record(uow, actor, "suspense.refund", f"payment:{payment.id}", now=now,
                     before={"refund_marked_at": None}, after={"refund_marked_at": now},
                     reason=reason)
        uow.commit()
        return payment

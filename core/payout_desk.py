"""Payouts an operator looks after from the money desk: the ones in flight, the failed
ones, and what may be done about them, each with a reason and an audit row.

- **Retry** a failed payout: a disbursement whose tries are used up is tried once more
  (a new payout, under a new key, never the failed one's); a failed withdrawal, whose
  money went back to the wallet, is sent again from the wallet (once per failed payout,
  keyed by it).
- **Cancel** a payout not yet sent (`pending`, e.g. paused for a low float): its hold is
  voided, it is failed, and its purpose finishes as for any failure (the member is
  told). A payout already handed to the provider cannot be cancelled from here: the
  money may have moved, and only the provider's answer settles it (the `payouts` duty
  asks).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from core import audit, disbursements, ledger, payouts, withdrawals
from core.db import UnitOfWork
from core.errors import Conflict, NotFound
from core.members import get_member
from core.models import (
    PAYOUTS_IN_FLIGHT,
    Loan,
    LoanStatus,
    Payout,
    PayoutPurpose,
    PayoutStatus,
)
from core.payouts import Outcome


def listed(uow: UnitOfWork, statuses: Sequence[PayoutStatus], *,
           limit: int = 500) -> Sequence[Payout]:
    with uow:
        return list(uow.session.scalars(select(Payout).where(Payout.status.in_(statuses))
                                        .order_by(Payout.id.desc()).limit(limit)))


def in_flight(uow: UnitOfWork) -> Sequence[Payout]:
    return listed(uow, PAYOUTS_IN_FLIGHT)


def failed(uow: UnitOfWork) -> Sequence[Payout]:
    return listed(uow, (PayoutStatus.FAILED,))


def _locked(uow: UnitOfWork, payout_id: int) -> Payout:
    payout = payouts.lock_payout(uow, payout_id)
    if payout is None:
        raise NotFound("payout.not_found")
    return payout


def retry(uow: UnitOfWork, actor: audit.Actor, *, payout_id: int, reason: str,
          now: datetime) -> Payout:
    """Try a failed payout again, as a new payout (see the module's docstring)."""
    reason = audit.reason_given(reason)
    with uow:
        old = _locked(uow, payout_id)
        if old.status != PayoutStatus.FAILED:
            raise Conflict("payout.not_failed")
        if old.purpose == PayoutPurpose.DISBURSEMENT:
            loan = uow.session.get(Loan, old.loan_id, with_for_update=True)
            if loan is None or loan.status != LoanStatus.FUNDED:
                raise Conflict("payout.loan_not_waiting")
            if uow.session.scalar(select(Payout.id).where(
                    Payout.loan_id == loan.id, Payout.purpose == PayoutPurpose.DISBURSEMENT,
                    Payout.status.in_((*PAYOUTS_IN_FLIGHT, PayoutStatus.PAID)))):
                raise Conflict("payout.already_retried")
            new = disbursements.disburse(uow, loan_id=loan.id, provider=old.provider, now=now,
                                         beyond_tries=True)
            assert new is not None
        else:
            if payouts.find_payout(uow, f"retry:{old.id}") is not None:
                raise Conflict("payout.already_retried")
            member = get_member(uow, old.member_id)
            wallet = ledger.wallet(uow, member.id)
            new = payouts.start(uow, provider=old.provider, key=f"retry:{old.id}",
                                purpose=PayoutPurpose.WITHDRAWAL, member=member,
                                amount=old.amount, debit_id=wallet.id, now=now)
        audit.record(uow, actor, "payout.retry", f"payout:{old.id}", now=now,
                     before={"status": str(old.status), "last_error": old.last_error},
                     after={"new_payout": new.id, "status": str(new.status)}, reason=reason)
        uow.commit()
        return new


def cancel(uow: UnitOfWork, actor: audit.Actor, *, payout_id: int, reason: str,
           now: datetime) -> Payout:
    """Cancel a payout not yet handed to the provider (see the module's docstring)."""
    reason = audit.reason_given(reason)
    with uow:
        payout = _locked(uow, payout_id)
        if payout.status != PayoutStatus.PENDING:
            raise Conflict("payout.not_cancellable", state=str(payout.status))
        payouts.settle_hold(uow, payout, Outcome(paid=False, code="cancelled",
                                                 detail="cancelled by an operator"), now)
        finish = (disbursements.after_payout if payout.purpose == PayoutPurpose.DISBURSEMENT
                  else withdrawals.after_payout)
        finish(uow, payout, now)
        audit.record(uow, actor, "payout.cancel", f"payout:{payout.id}", now=now,
                     before={"status": "pending"}, after={"status": str(payout.status)},
                     reason=reason)
        uow.commit()
        return payout

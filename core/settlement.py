"""A payout provider's word on a payout, as use cases: the result that settles it
(paid posts its hold, failed voids it, then its purpose finishes: the loan's schedule
starts, or the member hears of their withdrawal), and the answer that it never reached
the provider (it is sent again, or, after its last try, failed).

Every result may come twice (a replayed callback, a status query crossing a late
callback): a second identical result changes nothing; a contradicting one is refused.
"""
from __future__ import annotations

import logging
from datetime import datetime

from core import disbursements, payouts, withdrawals
from core.db import UnitOfWork
from core.models import Payout, PayoutPurpose, PayoutStatus
from core.payouts import Outcome

log = logging.getLogger(__name__)


def settle(uow: UnitOfWork, *, provider: str, originator: str, outcome: Outcome,
           now: datetime, amount: int | None = None) -> Payout | None:
    """The provider's final word on the payout it knows as `originator`; `amount` is
    what it says it paid, checked against the payout. None when no payout of this
    provider has that id."""
    payout_id = payouts.payout_id_of(originator)
    if payout_id is None:
        log.warning("a %s result for %r, which is none of our payouts", provider, originator)
        return None
    with uow:
        payout = payouts.lock_payout(uow, payout_id)
        if payout is None or payout.provider != provider:
            log.warning("a %s result for payout %s, which it does not hold", provider,
                        payout_id)
            return None
        if outcome.paid and amount is not None and amount != payout.amount:
            log.error("payout %s: %s says it paid %s, not %s; left for an operator",
                      payout.id, provider, amount, payout.amount)
            payout.last_error = f"provider paid {amount}, not {payout.amount}"[:200]
            uow.commit()
            return payout
        if payouts.settle_hold(uow, payout, outcome, now):
            finish = (disbursements.after_payout if payout.purpose == PayoutPurpose.DISBURSEMENT
                      else withdrawals.after_payout)
            finish(uow, payout, now)
        uow.commit()
        return payout


def never_received(uow: UnitOfWork, *, provider: str, originator: str,
                   now: datetime) -> Payout | None:
    """The provider says it has no record of this payout: it goes back to be sent again,
    or, when its tries are used up, it fails (the hold is voided)."""
    payout_id = payouts.payout_id_of(originator)
    if payout_id is None:
        return None
    settings = uow.settings
    again = payouts.never_reached(uow, payout_id, now,
                                  max_attempts=settings.payouts.max_attempts)
    if again is not None:
        return again
    with uow:
        payout = payouts.lock_payout(uow, payout_id)
        if payout is None or payout.status not in (PayoutStatus.SENT, PayoutStatus.UNKNOWN):
            return payout
    return settle(uow, provider=provider, originator=originator, now=now,
                  outcome=Outcome(paid=False, detail="the provider never received it"))

"""A payout provider's word on a payout, as use cases: the result that settles it
(paid posts its hold, failed voids it, then its purpose finishes: the loan's schedule
starts, or the member hears of their withdrawal), and the answer that the provider has
no record of it (failed, once it is old enough that no record can still appear; a
disbursement is then tried again as a new payout, never under the same id).

Every result may come twice (a replayed callback, a status query crossing a late
callback): a second identical result changes nothing; a contradicting one is refused.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

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
    """The provider says it has no record of this payout. While the payout is young the
    record may still appear (it may be queued): it is asked about again later. Once its
    first request is `payouts.give_up_hours` old, it failed: the hold is voided."""
    payout_id = payouts.payout_id_of(originator)
    if payout_id is None:
        return None
    give_up = timedelta(hours=uow.settings.payouts.give_up_hours)
    with uow:
        payout = payouts.lock_payout(uow, payout_id)
        if payout is None or payout.status not in (PayoutStatus.SENT, PayoutStatus.UNKNOWN):
            return payout
        if now - (payout.sent_at or payout.created_at) < give_up:
            return payout
    return settle(uow, provider=provider, originator=originator, now=now,
                  outcome=Outcome(paid=False, detail="the provider has no record of it"))

"""Money leaving by the payout gateway, outside any transaction: send a held payout,
ask the provider about those whose result is late or unsure, and ask for its float.
Each step is its own short use case (core/payouts.py, core/settlement.py); the call to
the provider sits between them."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from core import disbursements, payouts, settlement
from core.db import UnitOfWork
from core.errors import DomainError
from core.payouts import NeverReceived, Outcome, PayoutGateway, Refused, Unsure
from runtime.services import Services

log = logging.getLogger(__name__)


def send_payout(new_uow: Callable[[], UnitOfWork], gateway: PayoutGateway, payout_id: int,
                now: datetime) -> str:
    """Send one pending payout as of `now`: `sent` (the provider took it), `settled` (it
    answered at once), `unsure` (no answer to trust: it will be asked, never resent),
    `refused`, or `skipped` (not pending, or paused for float)."""
    order = payouts.claim(new_uow(), payout_id, now)
    if order is None:
        return "skipped"
    try:
        answer = gateway.send(order)
    except Unsure as exc:
        log.warning("payout %s: no answer to trust from %s (%s); asking it", payout_id,
                    gateway.provider, exc)
        payouts.record_unsure(new_uow(), payout_id, str(exc), now)
        return "unsure"
    except Refused as exc:
        log.warning("payout %s refused by %s: %s", payout_id, gateway.provider, exc)
        settlement.settle(new_uow(), provider=gateway.provider, originator=order.originator,
                          outcome=Outcome(paid=False, code=exc.code, detail=str(exc)),
                          now=now)
        return "refused"
    if isinstance(answer, Outcome):
        settlement.settle(new_uow(), provider=gateway.provider, originator=order.originator,
                          outcome=answer, now=now)
        return "settled"
    uow = new_uow()
    wait = timedelta(minutes=uow.settings.payouts.result_wait_minutes)
    payouts.record_taken(uow, payout_id, answer, now, wait)
    return "sent"


def ask_about(svc: Services, payout_id: int, now: datetime) -> str:
    """Ask the provider what became of a payout; settle it when the answer is final."""
    gateway = svc.payouts
    wait = timedelta(minutes=svc.settings.payouts.ask_every_minutes)
    order = payouts.asking(svc.uow(), payout_id, now, wait)
    if order is None:
        return "settled"
    try:
        answer = gateway.ask(order)
    except Unsure as exc:
        log.warning("payout %s: could not ask %s (%s); asking again later", payout_id,
                    gateway.provider, exc)
        return "unsure"
    if isinstance(answer, Outcome):
        settlement.settle(svc.uow(), provider=gateway.provider, originator=order.originator,
                          outcome=answer, now=now)
        return "settled"
    if isinstance(answer, NeverReceived):
        settlement.never_received(svc.uow(), provider=gateway.provider,
                                  originator=order.originator, now=now)
        return "resent"
    return "asked"  # the answer comes by callback


def disburse_funded(svc: Services, now: datetime) -> int:
    """Start the payout of every funded loan that has none in flight and tries left."""
    started = 0
    for loan_id in disbursements.funded_awaiting_payout(svc.uow()):
        try:
            if disbursements.disburse(svc.uow(), loan_id=loan_id,
                                      provider=svc.payouts.provider, now=now):
                started += 1
        except DomainError as exc:
            log.warning("loan %s not disbursed: %s", loan_id, exc.key)
    stuck = disbursements.awaiting_attention(svc.uow(), limit=1000)
    if stuck:
        log.warning("%d funded loans wait for an operator: every payout try failed", len(stuck))
    return started


def send_payouts(svc: Services, now: datetime) -> int:
    """Send pending payouts (their own jobs may have been lost), and ask the provider
    about late and unsure ones. Returns how many were sent or asked about."""
    done = 0
    for payout_id in payouts.due(svc.uow(), now):
        send_payout(svc.uow, svc.payouts, payout_id, now)
        done += 1
    for payout_id in payouts.to_ask(svc.uow(), now):
        ask_about(svc, payout_id, now)
        done += 1
    return done


def ask_float(svc: Services, now: datetime) -> int:
    """Ask the provider for its paying account's balance (it answers by callback)."""
    try:
        svc.payouts.ask_float()
    except Unsure as exc:
        log.warning("could not ask %s for its float: %s", svc.payouts.provider, exc)
        return 0
    return 1

"""RQ job entry points. Each job runs with this process's `Services`, built once from
settings and the environment (DATABASE_URL, REDIS_URL, ...) on first use."""
from __future__ import annotations

import logging
from collections.abc import Sequence

from core import confirmations
from runtime.services import Services, build_services
from workers import duties, payouts, stk

log = logging.getLogger(__name__)

_services: Services | None = None


def bind(svc: Services | None) -> None:
    """Use these services for jobs run in this process (the worker command, tests)."""
    global _services
    _services = svc


def bound() -> Services | None:
    """The services bound to this process, if any (none are built here)."""
    return _services


def services() -> Services:
    global _services
    if _services is None:
        _services = build_services()
    return _services


def send_outbox(ids: list[int]) -> dict[str, int]:
    """Send these outbox rows (those still queued and due)."""
    report = duties.send_outbox(services(), ids)
    return vars(report)


def tell_lenders(payment_id: int) -> int:
    """Write the lenders' notices of one repayment (a no-op once written)."""
    return duties.tell_lenders_of(services(), payment_id)


def share_story(story_id: int) -> int:
    """Write an approved story to the members who want stories (a no-op once done)."""
    return duties.share_story(services(), story_id)


def record_confirmation(confirmation_id: int) -> str:
    """Record one stored paybill confirmation in the ledger (a no-op once recorded)."""
    svc = services()
    return confirmations.record(svc.uow(), confirmation_id, svc.now())


def send_payout(payout_id: int) -> str:
    """Send one held payout to its provider (a no-op unless it is pending)."""
    svc = services()
    return payouts.send_payout(svc.uow, svc.payouts, payout_id, svc.now())


def push_stk(request_id: int) -> str:
    """Push the M-Pesa prompt of one pay-now request (a no-op unless it is pending)."""
    svc = services()
    return stk.push(svc.uow, svc.stk, request_id, svc.now())


def answer_sms(inbound_id: int) -> str:
    """Answer one stored incoming SMS (jobs queued before answerers took shares)."""
    return duties.answer_sms(services(), inbound_id)


def answer_share(share: int) -> int:
    """Answer the waiting SMS of one share and send their replies."""
    return duties.answer_share(services(), share)


def run_duties(names: Sequence[str] | None = None) -> dict[str, object]:
    """The periodic duties as of now (what `harambee cron` schedules)."""
    svc = services()
    report = duties.tick(svc, svc.now(), names)
    if report.failed:
        log.error("duties failed: %s", report.failed)
    return {"done": report.done, "failed": report.failed}

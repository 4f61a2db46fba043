"""The money desk: receipts in suspense (match to a loan or a member, or mark for
refund), payouts in flight and failed (retry, cancel), SMS that failed, and the
ledger's invariants as `harambee check` reports them. Every action goes through a core
use case that moves the money and writes the audit row."""
from __future__ import annotations

from typing import Any

from flask import request, url_for
from flask_login import current_user

from console.access import FINANCE, bp, requires
from console.render import act, csv_response, form_text, page, wants_csv
from core import casebook, checks, payout_desk, suspense
from core.models import PayoutStatus
from runtime.http import services


@bp.get("/money")
@requires(FINANCE)
def money() -> Any:
    svc = services()
    return page("money.html", title="Money desk",
                waiting=suspense.waiting(svc.uow()),
                in_flight=payout_desk.in_flight(svc.uow()),
                failed=payout_desk.failed(svc.uow()),
                failed_sms=casebook.failed_sms(svc.uow(), limit=100))


@bp.get("/money/suspense.csv")
@requires(FINANCE)
def suspense_csv() -> Any:
    rows = suspense.waiting(services().uow(), limit=100_000)
    return csv_response("suspense", ("id", "provider", "transaction_id", "phone", "amount_minor",
                                     "reference", "occurred_at"),
                        ((p.id, p.provider, p.transaction_id, p.phone, p.amount, p.reference,
                          p.occurred_at) for p in rows))


@bp.get("/money/payouts.csv")
@requires(FINANCE)
def payouts_csv() -> Any:
    wanted = request.args.get("status", "")
    statuses = [s for s in PayoutStatus if s.value == wanted] or list(PayoutStatus)
    rows = payout_desk.listed(services().uow(), statuses, limit=100_000)
    return csv_response("payouts", ("id", "purpose", "status", "phone", "amount_minor",
                                    "attempts", "last_error", "created_at", "settled_at"),
                        ((p.id, p.purpose, p.status, p.phone, p.amount, p.attempts,
                          p.last_error, p.created_at, p.settled_at) for p in rows))


@bp.get("/money/sms.csv")
@requires(FINANCE)
def failed_sms_csv() -> Any:
    rows = casebook.failed_sms(services().uow(), limit=100_000)
    return csv_response("failed-sms", ("id", "phone", "status", "attempts", "last_error",
                                       "template", "created_at"),
                        ((m.id, m.phone, m.status, m.attempts, m.last_error, m.template,
                          m.created_at) for m in rows))


@bp.post("/money/suspense/<int:payment_id>/match")
@requires(FINANCE)
def suspense_match(payment_id: int) -> Any:
    svc = services()
    return act(lambda: suspense.match(svc.uow(), current_user.actor, payment_id=payment_id,
                                      target=form_text("target", 40),
                                      reason=form_text("reason"), now=svc.now()),
               "Matched: the money moved and the payer was told.", url_for("console.money"))


@bp.post("/money/suspense/<int:payment_id>/refund")
@requires(FINANCE)
def suspense_refund(payment_id: int) -> Any:
    svc = services()
    return act(lambda: suspense.mark_refund(svc.uow(), current_user.actor,
                                            payment_id=payment_id,
                                            reason=form_text("reason"), now=svc.now()),
               "Marked for refund.", url_for("console.money"))


@bp.post("/money/payouts/<int:payout_id>/<action>")
@requires(FINANCE)
def payout_action(payout_id: int, action: str) -> Any:
    svc = services()
    use_case = {"retry": payout_desk.retry, "cancel": payout_desk.cancel}.get(action)
    if use_case is None:
        return page("refused.html", title="Not found", why="No such action."), 404
    return act(lambda: use_case(svc.uow(), current_user.actor, payout_id=payout_id,
                                reason=form_text("reason"), now=svc.now()),
               f"Payout {payout_id}: {action} done.", url_for("console.money"))


@bp.get("/money/check")
@requires(FINANCE)
def check() -> Any:
    """`harambee check`, run now, on one snapshot of the books."""
    svc = services()
    violations = checks.check(svc.uow())
    if wants_csv():
        return csv_response("check", ("invariant", "detail"),
                            ((v.invariant, v.detail) for v in violations))
    return page("check.html", title="Ledger check", violations=violations,
                invariants=checks.INVARIANTS, ran_at=svc.now())

"""Daraja's callbacks: the M-Pesa channel. Each hook checks the caller, reads
Daraja's own JSON body (`mpesa/callbacks.py`), calls one core use case, and answers as
Daraja expects.

    POST /hooks/c2b/<token>/validation     a paybill payment about to be made: accept or
                                           refuse it (C2B00012 account, C2B00013 amount)
    POST /hooks/c2b/<token>/confirmation   a paybill payment made: stored once by TransID,
                                           recorded in the ledger behind by a job
    POST /hooks/stk/<token>                a pay-now prompt's result
    POST /hooks/b2c/<token>/result         a payout's result
    POST /hooks/b2c/<token>/timeout        a payout that timed out in Daraja's queue
    POST /hooks/b2c/<token>/status/<id>    what became of payout <id> (Transaction Status)
    POST /hooks/b2c/<token>/balance        the paying account's balance (Account Balance)

Callbacks carry no signature: a caller must know the secret path token
(`mpesa.callback_token`) and, when `mpesa.allowed_ips` is set, call from one of those
addresses (behind `security.trusted_proxies` proxies). Anything refused answers 4xx and
changes nothing; only a fault on our side answers 503.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Response, abort, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from core import confirmations, payouts, repayments, settlement, stk
from core.errors import Conflict, DomainError
from core.payouts import Outcome
from mpesa import callbacks
from mpesa.callbacks import CallbackInvalid
from runtime.http import services
from runtime.metrics import PAYMENTS_IN
from runtime.mpesa import PROVIDER

bp = Blueprint("mpesa_hooks", __name__)
log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
STATUS_NOT_FOUND = "2033"  # Transaction Status: no such transaction (see mpesa/fake.py)
REFUSALS = {"account": "C2B00012", "amount": "C2B00013"}


def from_daraja(view: F) -> F:
    """403 unless the path's token is ours and the caller is allowed; 400 for a body
    that can never be valid; 503 (try again) only for a fault on our side."""

    @wraps(view)
    def guarded(token: str, *args: Any, **kwargs: Any) -> Any:
        settings = services().settings.mpesa
        if not hmac.compare_digest(token.encode(), settings.callback_token.encode()):
            abort(403)
        if settings.allowed_ips and not _allowed(request.remote_addr, settings.allowed_ips):
            log.warning("a Daraja callback from an address not allowed")
            abort(403)
        try:
            return view(*args, **kwargs)
        except CallbackInvalid as exc:
            PAYMENTS_IN.labels("rejected").inc()
            return jsonify({"ResultCode": "1", "ResultDesc": f"Rejected: {exc.reason}"}), 400
        except SQLAlchemyError:
            log.exception("a Daraja callback could not be recorded; Daraja may send it again")
            return jsonify({"ResultCode": "1", "ResultDesc": "Try again"}), 503

    return guarded  # type: ignore[return-value]


def _allowed(address: str | None, allowed: tuple[str, ...]) -> bool:
    try:
        caller = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(caller in ipaddress.ip_network(entry.strip(), strict=False) for entry in allowed)


def _body() -> Any:
    return callbacks.load_json(request.get_data(cache=False))


def _ack() -> tuple[Response, int]:
    return jsonify({"ResultCode": "0", "ResultDesc": "Accepted"}), 200


# ---------------------------------------------------------------- money in: paybill


@bp.post("/hooks/c2b/<token>/validation")
@from_daraja
def c2b_validation() -> tuple[Response, int]:
    """Accept a paybill payment only to a loan or a member, and of an amount M-Pesa may
    carry. Daraja takes a malformed body's refusal as a refusal too."""
    svc = services()
    s = svc.settings
    try:
        paid = callbacks.parse_c2b(_body(), scale=s.app.minor_scale, zone=s.zone,
                                   now=svc.now())
    except CallbackInvalid as exc:
        log.info("C2B validation refused: %s", exc.reason)
        return jsonify(callbacks.c2b_answer(reject="C2B00016")), 200
    why = repayments.refusal(svc.uow(), reference=paid.bill_ref, amount=paid.amount,
                             max_amount=s.minor(s.mpesa.max_amount))
    if why is not None:
        PAYMENTS_IN.labels("refused").inc()
        return jsonify(callbacks.c2b_answer(reject=REFUSALS[why])), 200
    return jsonify(callbacks.c2b_answer()), 200


@bp.post("/hooks/c2b/<token>/confirmation")
@from_daraja
def c2b_confirmation() -> tuple[Response, int]:
    """Keep a paybill payment once, by its M-Pesa receipt (TransID), and acknowledge it;
    a job records it in the ledger behind (`core/confirmations.py`). The reference says
    what it pays (a loan number, or a member's phone), never the masked MSISDN."""
    svc = services()
    s = svc.settings
    paid = callbacks.parse_c2b(_body(), scale=s.app.minor_scale, zone=s.zone, now=svc.now(),
                               max_minor=s.minor(s.mpesa.max_amount))
    try:
        stored = confirmations.store(svc.uow(), confirmations.Confirmed(
            provider=PROVIDER, trans_id=paid.trans_id, amount=paid.amount,
            bill_ref=paid.bill_ref, phone=paid.phone, occurred_at=paid.trans_time), svc.now())
    except Conflict as exc:
        log.error("C2B %s came again with other details: %s", paid.trans_id, exc.key)
        PAYMENTS_IN.labels("conflict").inc()
        return jsonify({"ResultCode": "1", "ResultDesc": "Already received differently"}), 409
    except DomainError as exc:
        PAYMENTS_IN.labels("rejected").inc()
        return jsonify({"ResultCode": "1", "ResultDesc": f"Rejected: {exc.key}"}), 400
    PAYMENTS_IN.labels("stored" if stored.created else "duplicate").inc()
    return _ack()


# ---------------------------------------------------------------- money in: pay now


@bp.post("/hooks/stk/<token>")
@from_daraja
def stk_callback() -> tuple[Response, int]:
    """A pay-now prompt's result: paid (recorded once, by the receipt), cancelled or
    failed (the borrower hears nothing was taken)."""
    svc = services()
    s = svc.settings
    got = callbacks.parse_stk_callback(_body(), scale=s.app.minor_scale, zone=s.zone,
                                       now=svc.now(), max_minor=s.minor(s.mpesa.max_amount))
    done = stk.result(svc.uow(), stk.StkResult(
        checkout_request_id=got.checkout_request_id, paid=got.paid, cancelled=got.cancelled,
        receipt=got.receipt, amount=got.amount, phone=got.phone, paid_at=got.paid_at,
        code=got.result_code, detail=got.result_desc), svc.now())
    if done is None:
        log.warning("an STK result for a prompt we did not send")
    return _ack()


# ---------------------------------------------------------------- money out: payouts


@bp.post("/hooks/b2c/<token>/result")
@from_daraja
def b2c_result() -> tuple[Response, int]:
    """A payout's result: paid posts its hold, failed voids it (once; a replay changes
    nothing). The paying account's balance that comes with it is kept."""
    svc = services()
    s = svc.settings
    result = callbacks.parse_result(_body())
    _keep_float(result)
    if result.succeeded:
        outcome = Outcome(paid=True, receipt=callbacks.b2c_receipt(result),
                          code=result.result_code, detail=result.result_desc)
        amount = callbacks.b2c_amount(result, scale=s.app.minor_scale,
                                      max_minor=s.minor(s.mpesa.max_amount))
    else:
        outcome, amount = Outcome(paid=False, code=result.result_code,
                                  detail=result.result_desc), None
    _settle(result.originator_conversation_id, outcome, amount)
    return _ack()


@bp.post("/hooks/b2c/<token>/timeout")
@from_daraja
def b2c_timeout() -> tuple[Response, int]:
    """The payout timed out in Daraja's queue: whether it was paid is unknown, so the
    provider is asked (never sent again blindly)."""
    svc = services()
    result = callbacks.parse_result(_body())
    payout_id = payouts.payout_id_of(result.originator_conversation_id)
    if payout_id is not None:
        payouts.record_unsure(svc.uow(), payout_id, "timed out in Daraja's queue", svc.now())
    return _ack()


@bp.post("/hooks/b2c/<token>/status/<originator>")
@from_daraja
def b2c_status(originator: str) -> tuple[Response, int]:
    """What became of payout `originator`, as Transaction Status found it: completed
    (paid), failed, or never received (sent again, or failed after its last try)."""
    svc = services()
    s = svc.settings
    result = callbacks.parse_result(_body())
    if result.result_code == STATUS_NOT_FOUND:
        settlement.never_received(svc.uow(), provider=PROVIDER, originator=originator,
                                  now=svc.now())
        return _ack()
    if not result.succeeded:
        log.info("Transaction Status for %s did not answer (%s); asking again later",
                 originator, result.result_code)
        return _ack()
    state = result.parameters.get("TransactionStatus", "")
    if state == "Completed":
        amount = callbacks.b2c_amount(_as_b2c(result), scale=s.app.minor_scale,
                                      max_minor=s.minor(s.mpesa.max_amount))
        receipt = result.parameters.get("ReceiptNo") or result.transaction_id or None
        _settle(originator, Outcome(paid=True, receipt=receipt, code=result.result_code,
                                    detail=state), amount)
    elif state in ("Failed", "Cancelled", "Expired", "Declined"):
        _settle(originator, Outcome(paid=False, code=state, detail=result.result_desc), None)
    return _ack()


@bp.post("/hooks/b2c/<token>/balance")
@from_daraja
def b2c_balance() -> tuple[Response, int]:
    """The paying account's balance: payouts wait while it cannot cover them."""
    _keep_float(callbacks.parse_result(_body()))
    return _ack()


def _as_b2c(result: callbacks.DarajaResult) -> callbacks.DarajaResult:
    """A Transaction Status result's Amount, read as a B2C result's TransactionAmount."""
    parameters = dict(result.parameters)
    if "Amount" in parameters:
        parameters["TransactionAmount"] = parameters["Amount"]
    return callbacks.DarajaResult(result.result_type, result.result_code, result.result_desc,
                                  result.originator_conversation_id, result.conversation_id,
                                  result.transaction_id, parameters, result.reference)


def _settle(originator: str, outcome: Outcome, amount: int | None) -> None:
    svc = services()
    try:
        settlement.settle(svc.uow(), provider=PROVIDER, originator=originator,
                          outcome=outcome, now=svc.now(), amount=amount)
    except Conflict as exc:  # a result contradicting an earlier one: kept as it was
        log.error("payout %s: %s", originator, exc.key)


def _keep_float(result: callbacks.DarajaResult) -> None:
    svc = services()
    available = callbacks.utility_account_balance(result, scale=svc.settings.app.minor_scale)
    if available is not None:
        payouts.record_float(svc.uow(), PROVIDER, available, svc.now())

"""`POST /hooks/payments`: a normalised mobile-money receipt (any provider adapter)."""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from core import repayments
from core.errors import Conflict, DomainError
from core.messages import text
from runtime.http import require_webhook_key, services
from runtime.metrics import PAYMENTS_IN

bp = Blueprint("payments", __name__)
log = logging.getLogger(__name__)

FIELDS = ("provider", "transaction_id", "amount", "currency", "reference")


def _bad(reason: str, status: int = 400) -> tuple[Response, int]:
    PAYMENTS_IN.labels("rejected").inc()
    return jsonify({"status": "rejected", "error": reason}), status


def _parse_time(value: Any, now: datetime) -> datetime | None:
    if value in (None, ""):
        return now
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@bp.post("/hooks/payments")
@require_webhook_key
def payment_hook() -> tuple[Response, int]:
    svc = services()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad("body must be a JSON object")
    missing = [f for f in FIELDS if body.get(f) in (None, "")]
    if missing:
        return _bad(f"missing: {', '.join(missing)}")
    amount = body["amount"]
    if isinstance(amount, bool) or not isinstance(amount, int):
        return _bad("amount must be an integer of minor units")
    if not all(isinstance(body[f], str) for f in FIELDS if f != "amount"):
        return _bad("provider, transaction_id, currency and reference must be strings")
    phone = body.get("phone")
    if phone is not None and not isinstance(phone, str):
        return _bad("phone must be a string")
    now = svc.now()
    occurred = _parse_time(body.get("occurred_at"), now)
    if occurred is None:
        return _bad("occurred_at must be an ISO 8601 time")
    try:
        receipt = repayments.record_payment(
            svc.uow(), provider=body["provider"], transaction_id=body["transaction_id"],
            phone=phone, amount=amount, currency=body["currency"],
            reference=body["reference"], occurred_at=occurred, now=now)
    except Conflict as exc:
        return _bad(text(exc.key, "en", **exc.params), 409)
    except DomainError as exc:
        try:
            reason = text(exc.key, "en", **exc.params)
        except KeyError:
            reason = exc.key
        return _bad(reason)
    except Exception:  # noqa: BLE001 - the provider retries on 503; nothing was committed
        log.exception("payment hook failed for provider transaction")
        return _bad("temporarily unavailable, retry", 503)
    payment = receipt.payment
    PAYMENTS_IN.labels("duplicate" if not receipt.created else payment.kind).inc()
    return jsonify({"status": "ok", "duplicate": not receipt.created, "kind": payment.kind,
                    "payment_id": payment.id}), 200

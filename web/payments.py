"""`POST /hooks/payments`: a normalised mobile-money receipt from a provider without a
channel of its own (M-Pesa has its own hooks, `mpesa/hooks.py`).

Besides the webhook key, every call is signed by its provider:

    X-Harambee-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

with the provider's own secret (`payments.secrets`), within five minutes of our clock.
Only providers named in `payments.providers` are taken. A refusal that can never
succeed (unsigned, unknown provider, a malformed body, an amount beyond
`payments.max_amount`, a time outside a sane window) answers 4xx and writes nothing;
only a fault on our side answers 503, for the provider to try again.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from core import repayments
from core.config import Settings
from core.errors import Conflict, DomainError
from core.messages import text
from runtime.http import require_webhook_key, services
from runtime.metrics import PAYMENTS_IN

bp = Blueprint("payments", __name__)
log = logging.getLogger(__name__)

FIELDS = ("provider", "transaction_id", "amount", "currency", "reference")
SIGNATURE = "X-Harambee-Signature"
WINDOW = 300  # seconds a signature stays good either side of our clock
OLDEST = timedelta(days=366)  # a receipt older than this is not a live payment
LATEST = timedelta(days=1)  # nor one from the future beyond clock drift


def sign(secret: str, body: bytes, moment: int | None = None) -> str:
    """The signature header value a provider sends with `body` (tests and tools)."""
    t = int(time.time()) if moment is None else moment
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def _bad(reason: str, status: int = 400) -> tuple[Response, int]:
    PAYMENTS_IN.labels("rejected").inc()
    return jsonify({"status": "rejected", "error": reason}), status


def _signed_by(settings: Settings, provider: str, body: bytes, header: str,
               now: float) -> str | None:
    """None when `provider` signed `body` within the window; else why not."""
    secret = settings.payments.secrets.get(provider)
    if provider not in settings.payments.providers or not secret:
        return "unknown provider"
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or len(stamp) > 12 or not given:
        return "missing or malformed signature"
    if abs(now - int(stamp)) > WINDOW:
        return "signature too old or from the future"
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        return "bad signature"
    return None


def _parse_time(value: Any, now: datetime) -> datetime | None:
    if value in (None, ""):
        return now
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment if now - OLDEST <= moment <= now + LATEST else None


@bp.post("/hooks/payments")
@require_webhook_key
def payment_hook() -> tuple[Response, int]:
    svc = services()
    settings = svc.settings
    raw = request.get_data(cache=False)
    if b"\x00" in raw:
        return _bad("NUL bytes are not allowed")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return _bad("body must be JSON")
    if not isinstance(body, dict):
        return _bad("body must be a JSON object")
    if any(isinstance(v, str) and "\x00" in v for v in body.values()):
        return _bad("NUL characters are not allowed")
    provider = body.get("provider")
    if not isinstance(provider, str):
        return _bad("provider must be a string")
    refused = _signed_by(settings, provider, raw, request.headers.get(SIGNATURE, ""),
                         time.time())
    if refused is not None:
        log.warning("payment hook refused: %s", refused)
        return _bad(refused, 403)
    missing = [f for f in FIELDS if body.get(f) in (None, "")]
    if missing:
        return _bad(f"missing: {', '.join(missing)}")
    amount = body["amount"]
    if isinstance(amount, bool) or not isinstance(amount, int):
        return _bad("amount must be an integer of minor units")
    if not 1 <= amount <= settings.minor(settings.payments.max_amount):
        return _bad(f"amount must be from 1 to {settings.minor(settings.payments.max_amount)}")
    if not all(isinstance(body[f], str) for f in FIELDS if f != "amount"):
        return _bad("provider, transaction_id, currency and reference must be strings")
    phone = body.get("phone")
    if phone is not None and not isinstance(phone, str):
        return _bad("phone must be a string")
    now = svc.now()
    occurred = _parse_time(body.get("occurred_at"), now)
    if occurred is None:
        return _bad("occurred_at must be an ISO 8601 time within the last year")
    try:
        receipt = repayments.record_payment(
            svc.uow(), provider=provider, transaction_id=body["transaction_id"], phone=phone,
            amount=amount, currency=body["currency"], reference=body["reference"],
            occurred_at=occurred, now=now)
    except Conflict as exc:
        return _bad(text(exc.key, "en", **exc.params), 409)
    except DomainError as exc:
        return _bad(text(exc.key, "en", **exc.params))
    except SQLAlchemyError:
        log.exception("payment hook failed for a %s transaction; nothing was committed",
                      provider)
        return _bad("temporarily unavailable, retry", 503)
    payment = receipt.payment
    PAYMENTS_IN.labels("duplicate" if not receipt.created else payment.kind).inc()
    return jsonify({"status": "ok", "duplicate": not receipt.created, "kind": payment.kind,
                    "payment_id": payment.id}), 200

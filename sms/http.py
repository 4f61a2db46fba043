"""The SMS webhooks: incoming messages and delivery reports (Africa's Talking's form
fields, docs/protocols.md). Both store first and answer at once; replies go out through the
outbox from a job."""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

from flask import Blueprint, Response, request
from redis import RedisError
from sqlalchemy.exc import DataError

from core import delivery, inbox
from core.models import InboundStatus
from core.phones import masked, try_normalise
from runtime.http import Answer, Hook, PhoneWindow, require_webhook_key, services, sms_window
from runtime.metrics import SMS_IN
from runtime.services import Services

bp = Blueprint("sms", __name__)
log = logging.getLogger(__name__)


def _plain(body: str = "", status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def _unusable() -> Response | None:
    """400 for a form no retry can make storable (a NUL byte: PostgreSQL refuses it in
    text); a gateway must not be told to try again forever."""
    if any("\x00" in value for value in request.form.values()):
        return _plain("NUL characters are not allowed", 400)
    return None


@bp.post("/hooks/sms")
@require_webhook_key
def incoming() -> Response:
    """An SMS through Flask: for the requests the door (`runtime/http.py`) leaves to it
    (a form that is not urlencoded, a body without a length)."""
    said = take_sms(services(), sms_window(), request.form, request.remote_addr or "")
    response = _plain(said.body, said.status)
    response.headers.extend(said.headers)
    return response


def at_the_door(svc: Services, window: PhoneWindow) -> Hook:
    """`take_sms` as the door in front of Flask calls it."""
    return lambda form, address: take_sms(svc, window, form, address)


def take_sms(svc: Services, window: PhoneWindow, form: Mapping[str, str], address: str
             ) -> Answer:
    """Store the message (once per AT id), answer 200, and start its share's answerer.
    A phone over `security.sms_rate_limit` gets 429 and nothing is stored; a form no
    retry can make storable gets 400."""
    if any("\x00" in value for value in form.values()):  # PostgreSQL refuses it in text
        SMS_IN.labels("rejected").inc()
        return Answer("NUL characters are not allowed", 400)
    sender = form.get("from", "").strip()
    if not window.allows(try_normalise(sender[:32], svc.settings.app.default_region)
                         or sender[:32] or address):
        return Answer("too many requests; try again later", 429,
                      (("Retry-After", window.retry_after),))
    if not sender:
        SMS_IN.labels("rejected").inc()
        return Answer("missing from", 400)
    body = form.get("text", "")
    provider_id = form.get("id", "").strip()
    if not provider_id:  # AT always sends one; without it, the same fields are the same SMS
        seed = "\x1f".join((sender, body, form.get("date", ""))).encode()
        provider_id = "h:" + hashlib.sha256(seed).hexdigest()[:40]
    try:
        stored = inbox.store(svc.uow(), provider_id=provider_id, phone=sender, text=body,
                             now=svc.now(), short_code=form.get("to"),
                             link_id=form.get("linkId"), network_code=form.get("networkCode"))
    except DataError:  # a value the database can never take: retrying will not help
        log.warning("SMS from %s refused: a value the database cannot store", masked(sender))
        SMS_IN.labels("rejected").inc()
        return Answer("unstorable message", 400)
    except Exception:  # noqa: BLE001 - nothing stored: AT delivers it again
        log.exception("could not store SMS from %s", masked(sender))
        SMS_IN.labels("unavailable").inc()
        return Answer("temporarily unavailable", 503)
    SMS_IN.labels("stored" if stored.created else "duplicate").inc()
    if stored.created or stored.status == InboundStatus.RECEIVED:
        try:
            svc.jobs.answer_sms(stored.id)
        except RedisError:  # the inbound sweep answers it
            log.warning("could not enqueue SMS %s; the sweep will answer it", stored.id)
    return Answer("")


@bp.post("/hooks/sms/delivery")
@require_webhook_key
def delivery_report() -> Response:
    """Apply a delivery report to its outbox row (now, or once the row has the id)."""
    svc = services()
    form = request.form
    refused = _unusable()
    if refused is not None:
        return refused
    message_id, status = form.get("id", "").strip(), form.get("status", "").strip()
    if not message_id or not status:
        return _plain("missing id or status", 400)
    try:
        delivery.record_report(svc.uow(), message_id=message_id, status=status,
                               failure_reason=form.get("failureReason"),
                               phone=form.get("phoneNumber"), now=svc.now())
    except DataError:
        return _plain("unstorable report", 400)
    except Exception:  # noqa: BLE001 - AT retries the report
        log.exception("could not store a delivery report")
        return _plain("temporarily unavailable", 503)
    return _plain()

"""`POST /hooks/ussd` (one hop of Africa's Talking's USSD callback) and
`POST /hooks/ussd/events` (end-of-session notifications)."""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping

import redis
from flask import Blueprint, Response, request
from prometheus_client import Counter

from core.messages import text
from core.phones import try_normalise
from runtime.http import Answer, Hook, require_webhook_key, services
from runtime.metrics import REGISTRY, USSD_HOPS, USSD_SECONDS
from runtime.services import Services
from ussd import machine
from ussd.adapter import CorePort
from ussd.screen import Screen
from ussd.session import SessionStore, Span, session_digest
from ussd.state import State

log = logging.getLogger(__name__)
bp = Blueprint("ussd", __name__)

SESSIONS_ENDED = Counter("harambee_ussd_sessions_ended", "USSD end-of-session events",
                         ["status"], registry=REGISTRY)
EVENT_STATUSES = ("Success", "Incomplete", "Failed")


_E164 = re.compile(r"\+[1-9]\d{7,14}")


def e164(raw: str, region: str) -> str | None:
    """The caller's number: the gateway sends E.164 already (checked cheaply); anything
    else goes through the full parser."""
    if _E164.fullmatch(raw):
        return raw
    return try_normalise(raw[:32], region)


def secret(svc: Services) -> bytes:
    """The key for digests of hop texts: a secret of its own, never the webhook key
    (which every gateway request carries)."""
    return svc.settings.security.session_secret.encode()


def plain(body: str) -> Response:
    return Response(body, status=200, mimetype="text/plain")


def end(key: str, lang: str | None, max_chars: int) -> str:
    return Screen(text(key, lang), end=True).render(max_chars)


@bp.post("/hooks/ussd")
@require_webhook_key
def hop() -> Response:
    """One hop through Flask: for the requests the door (`runtime/http.py`) leaves to
    it (a form that is not urlencoded, a body without a length)."""
    return plain(answer_hop(services(), request.form))


def at_the_door(svc: Services) -> Hook:
    """`answer_hop` as the door in front of Flask calls it."""
    return lambda form, _address: Answer(answer_hop(svc, form))


def answer_hop(svc: Services, form: Mapping[str, str]) -> str:
    """One hop: load the session, step the menu machine, save, and always answer with a
    CON/END the gateway can show (never a 500)."""
    started = time.perf_counter()
    try:
        said, outcome = _hop(svc, form)
    except Exception:  # noqa: BLE001 - last net: the gateway must get CON/END, never a 500
        log.exception("ussd hop failed before the session was loaded")
        said, outcome = end("ussd.error", None, svc.settings.ussd.max_chars), "error"
    USSD_HOPS.labels(outcome=outcome).inc()
    USSD_SECONDS.observe(time.perf_counter() - started)
    return said


def _hop(svc: Services, form: Mapping[str, str]) -> tuple[str, str]:
    settings = svc.settings
    limit = settings.ussd.max_chars
    session_id, current = form.get("sessionId", ""), form.get("text", "")[:500]
    phone = e164(form.get("phoneNumber", ""), settings.app.default_region)
    if not session_id or phone is None:
        return end("ussd.error", None, limit), "bad_request"
    sid = session_digest(session_id)
    store = SessionStore(svc.redis.client, settings.ussd, secret(svc))
    try:
        loaded = store.load(sid, phone, int(time.time() // 60))
    except redis.RedisError:
        log.warning("ussd session %s: redis unavailable", sid)
        both = f"{text('ussd.unavailable', 'en')}\n{text('ussd.unavailable', 'sw')}"
        return Screen(both, end=True).render(limit), "redis_down"
    lang = loaded.state.lang if loaded.state else None
    if loaded.hops_this_minute > settings.ussd.rate_limit_per_minute:
        return end("ussd.rate_limited", lang, limit), "rate_limited"
    last = loaded.last
    if loaded.state is not None and last is not None and (
            last.same(store.secret, current) or loaded.state.ended):
        return last.answer, "replay"
    state = loaded.state
    typed: str | None
    secrets: list[Span] = []  # where PINs lie in `current`
    if state is None or last is None:
        state = State(phone=phone, sid=sid)
        if loaded.card is not None:  # a known caller: no SQL for the dial
            state.caller, state.looked_up, state.lang = \
                loaded.card, True, loaded.card.language
        typed = current or None
        if loaded.resume is not None:
            state, typed = machine.resume(state, loaded.resume), None
    else:
        typed = last.extension(store.secret, current)
        if typed is not None:
            secrets = list(last.secrets)
        else:
            typed = current
        if machine.takes_secret(state) and typed:
            secrets.append((len(current) - len(typed), len(current)))
    port = CorePort(svc)
    try:
        state, screen = machine.step(state, typed, port)
        answer, outcome = screen.render(limit), "end" if screen.end else "con"
    except Exception:  # noqa: BLE001 - a phone must get an answer, never a 500
        log.exception("ussd session %s: hop failed at %s", sid, state.node or "start")
        state.ended = True
        answer, outcome = end("ussd.error", state.lang, limit), "error"
    try:
        fresh = port.looked_up.get(phone)
        store.save(sid, state, current, answer, machine.resume_point(state), secrets,
                   (fresh, loaded) if fresh is not None else None)
    except redis.RedisError:
        log.warning("ussd session %s: could not save the session", sid)
    return answer, outcome


@bp.post("/hooks/ussd/events")
@require_webhook_key
def events() -> Response:
    """Mark a session complete (no resume offered) or dropped (a redial may continue)."""
    svc = services()
    form = request.form
    status = form.get("status", "")
    SESSIONS_ENDED.labels(status=status if status in EVENT_STATUSES else "other").inc()
    phone = try_normalise(form.get("phoneNumber", "")[:32], svc.settings.app.default_region)
    session_id = form.get("sessionId", "")
    if phone is None or not session_id:
        return plain("OK")
    store = SessionStore(svc.redis.client, svc.settings.ussd, secret(svc))
    try:
        if status == "Success":
            store.clear_resume(phone)
        else:
            state = store.state_of(session_digest(session_id))
            point = machine.resume_point(state) if state is not None else None
            if point is not None:
                store.mark_dropped(phone, point)
    except redis.RedisError:
        log.warning("ussd event for session %s: redis unavailable", session_digest(session_id))
    return plain("OK")

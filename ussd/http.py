"""`POST /hooks/ussd` (one hop of Africa's Talking's USSD callback) and
`POST /hooks/ussd/events` (end-of-session notifications)."""
from __future__ import annotations

import logging
import time

import redis
from flask import Blueprint, Response, current_app, request
from prometheus_client import Counter

from core.messages import text
from core.phones import try_normalise
from ussd import machine
from ussd.adapter import CorePort
from ussd.screen import Screen
from ussd.session import SessionStore, session_digest
from ussd.state import State
from web.metrics import REGISTRY, USSD_HOPS, USSD_SECONDS
from web.security import require_webhook_key
from web.services import Services

log = logging.getLogger(__name__)
bp = Blueprint("ussd", __name__)

SESSIONS_ENDED = Counter("harambee_ussd_sessions_ended", "USSD end-of-session events",
                         ["status"], registry=REGISTRY)
EVENT_STATUSES = ("Success", "Incomplete", "Failed")


def new_input(previous: str | None, current: str) -> str | None:
    """What the caller typed since the last hop. `text` accumulates inputs joined by
    `*`, and an input may itself hold `*`: so compare with the last text, never split.
    A text that does not extend the last one is taken whole (some gateways send only
    the latest input)."""
    if previous is None:
        return current or None
    if previous and current.startswith(previous + "*"):
        return current[len(previous) + 1:]
    return current


def plain(body: str) -> Response:
    return Response(body, status=200, mimetype="text/plain")


def end(key: str, lang: str | None, max_chars: int) -> str:
    return Screen(text(key, lang), end=True).render(max_chars)


@bp.post("/hooks/ussd")
@require_webhook_key
def hop() -> Response:
    started = time.perf_counter()
    answer, outcome = _hop(current_app.extensions["harambee"])
    USSD_HOPS.labels(outcome=outcome).inc()
    USSD_SECONDS.observe(time.perf_counter() - started)
    return plain(answer)


def _hop(svc: Services) -> tuple[str, str]:
    settings = svc.settings
    limit = settings.ussd.max_chars
    form = request.form
    session_id, current = form.get("sessionId", ""), form.get("text", "")[:500]
    phone = try_normalise(form.get("phoneNumber", "")[:32], settings.app.default_region)
    if not session_id or phone is None:
        return end("ussd.error", None, limit), "bad_request"
    sid = session_digest(session_id)
    store = SessionStore(svc.redis.client, settings.ussd)
    try:
        loaded = store.load(sid, phone, int(time.time() // 60))
    except redis.RedisError:
        log.warning("ussd session %s: redis unavailable", sid)
        both = f"{text('ussd.unavailable', 'en')}\n{text('ussd.unavailable', 'sw')}"
        return Screen(both, end=True).render(limit), "redis_down"
    lang = loaded.state.lang if loaded.state else None
    if loaded.hops_this_minute > settings.ussd.rate_limit_per_minute:
        return end("ussd.rate_limited", lang, limit), "rate_limited"
    if loaded.state is not None and loaded.last_answer is not None and (
            loaded.last_text == current or loaded.state.ended):
        return loaded.last_answer, "replay"
    state = loaded.state
    if state is None:
        state = State(phone=phone, sid=sid)
        if loaded.resume is not None:
            state = machine.resume(state, loaded.resume)
            typed = None
        else:
            typed = new_input(None, current)
    else:
        typed = new_input(loaded.last_text, current)
    try:
        state, screen = machine.step(state, typed, CorePort(svc))
        answer, outcome = screen.render(limit), "end" if screen.end else "con"
    except Exception:  # noqa: BLE001 - a phone must get an answer, never a 500
        log.exception("ussd session %s: hop failed at %s", sid, state.node or "start")
        state.ended = True
        answer, outcome = end("ussd.error", state.lang, limit), "error"
    try:
        store.save(sid, state, current, answer, machine.resume_point(state))
    except redis.RedisError:
        log.warning("ussd session %s: could not save the session", sid)
    return answer, outcome


@bp.post("/hooks/ussd/events")
@require_webhook_key
def events() -> Response:
    """Mark a session complete (no resume offered) or dropped (a redial may continue)."""
    svc: Services = current_app.extensions["harambee"]
    form = request.form
    status = form.get("status", "")
    SESSIONS_ENDED.labels(status=status if status in EVENT_STATUSES else "other").inc()
    phone = try_normalise(form.get("phoneNumber", "")[:32], svc.settings.app.default_region)
    session_id = form.get("sessionId", "")
    if phone is None or not session_id:
        return plain("OK")
    store = SessionStore(svc.redis.client, svc.settings.ussd)
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

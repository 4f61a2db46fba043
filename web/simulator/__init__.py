"""`/simulator`: feature phones in the browser, side by side, playing every role of a
loan (docs/simulator.md).

The page is rendered here and kept live by a small script (`static/simulator.js`) that
polls `GET /simulator/api/state` once a second. Each action is one small JSON call;
everything the service sees arrives through its real hooks (`network.py`, `money.py`).
The blueprint is registered only when `simulator.enabled` is set, which production
refuses; its clock control needs the demo's movable clock (`runtime/clock.py`).
"""
from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Any

import requests
from flask import Blueprint, Response, current_app, jsonify, render_template, request
from redis import RedisError
from sqlalchemy import select

from core.models import BEING_REPAID, Installment, Loan, Member
from runtime.http import services
from runtime.sms_gateways import SimulatorGateway
from web.simulator.money import Mpesa
from web.simulator.network import Network, Refused
from workers import duties

log = logging.getLogger(__name__)
bp = Blueprint("simulator", __name__, url_prefix="/simulator", template_folder="templates",
               static_folder="static")

STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
MORNING = time(9, 0)  # "to the next due date" lands at 09:00 local, outside quiet hours


def _network() -> Network:
    return Network(services(), current_app._get_current_object())  # type: ignore[attr-defined]


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _field(body: dict[str, Any], name: str, longest: int = 200) -> str:
    value = body.get(name, "")
    return str(value)[:longest] if isinstance(value, str | int) else ""


def _refused(reason: str, status: int = 400) -> tuple[Response, int]:
    return jsonify({"error": reason}), status


@bp.errorhandler(Refused)
def refused(exc: Refused) -> tuple[Response, int]:
    return _refused(str(exc))


@bp.errorhandler(RedisError)
def redis_down(exc: RedisError) -> tuple[Response, int]:
    log.warning("simulator: redis unavailable (%s)", type(exc).__name__)
    return _refused("Redis is not answering; the phones wait for it", 503)


@bp.errorhandler(requests.RequestException)
def fake_down(exc: requests.RequestException) -> tuple[Response, int]:
    log.warning("simulator: the fake Daraja did not answer (%s)", type(exc).__name__)
    return _refused("the fake Daraja is not answering; M-Pesa waits for it", 503)


@bp.get("/")
def page() -> str:
    svc = services()
    s = svc.settings
    return render_template("simulator/index.html", config={
        "serviceCode": s.ussd.service_code, "maxChars": s.ussd.max_chars,
        "hopTimeout": s.simulator.hop_timeout_seconds,
        "sessionSeconds": s.simulator.session_seconds, "shortCode": s.simulator.short_code,
        "paybill": s.payments.paybill, "knownPin": s.simulator.known_pin,
        "rail": s.gateway.payout, "sms": s.gateway.sms})


@bp.get("/api/state")
def state() -> Response:
    """Everything the page shows: the clock, each phone, the log since `?since=`.

    The page asks for it every second, so it is also the network's heartbeat: sessions
    past their time are dropped, messages waiting for a phone on the page are delivered
    (and reported), and payouts paid since the last look become M-Pesa's SMS."""
    net = _network()
    svc = net.svc
    phones = net.phones()
    net.expire_sessions(phones)
    mpesa = Mpesa(net)
    mpesa.payouts_arrived(phones)
    gateway = svc.sms if isinstance(svc.sms, SimulatorGateway) else None
    prompts = mpesa.prompts()
    mpesa.callbacks_seen()
    with svc.uow() as uow:
        people = {m.phone: m for m in uow.session.scalars(
            select(Member).where(Member.phone.in_(phones)))}
        shown: list[dict[str, Any]] = []
        for phone in phones:
            member = people.get(phone)
            shown.append({
                "phone": phone, "name": member.name if member else "",
                "added": phone not in svc.settings.simulator.phones,
                "roles": member.roles if member else "",
                "pin": svc.settings.simulator.known_pin
                if member is not None and phone in svc.settings.simulator.phones else ""})
    for entry in shown:
        phone = entry["phone"]
        if gateway is not None:
            for message in gateway.deliver(phone):
                net.report_delivered(phone, message.id)
        session = net.session(phone)
        entry["ussd"] = None if session is None else {
            "screen": session.screen, "secondsLeft": net.seconds_left(session)}
        entry["inbox"] = [_dated(m.as_dict()) for m in gateway.received(phone)] if gateway \
            else []
        entry["outbox"] = [_dated(m) for m in net.written(phone)]
        entry["prompts"] = prompts.get(phone, [])
    now = svc.now()
    return jsonify({"clock": _clock(now), "phones": shown,
                    "log": net.log_since(request.args.get("since", 0, type=int))})


def _dated(message: dict[str, Any]) -> dict[str, Any]:
    """A message with `when`: the service's local time it was sent at, as shown."""
    zone = services().settings.zone
    return {**message, "when": datetime.fromtimestamp(message["at"], zone).strftime("%d %b %H:%M")}


def _clock(now: datetime) -> dict[str, Any]:
    local = now.astimezone(services().settings.zone)
    return {"now": now.isoformat(), "local": local.strftime("%a %d %b %Y %H:%M"),
            "zone": local.tzname()}


@bp.post("/api/phones")
def add_phone() -> tuple[Response, int]:
    phone = _network().add_phone(_field(_body(), "phone", 40))
    return jsonify({"phone": phone}), 201


@bp.delete("/api/phones/<phone>")
def remove_phone(phone: str) -> tuple[Response, int]:
    _network().remove_phone(phone)
    return jsonify({}), 200


@bp.post("/api/ussd")
def ussd() -> Response:
    """`{"phone", "action": "dial" | "reply" | "cancel", "code" | "input"}`."""
    body = _body()
    net = _network()
    phone = _known(net, _field(body, "phone", 20))
    action = _field(body, "action", 10)
    if action == "dial":
        return jsonify(net.dial(phone, _field(body, "code", 40)).as_dict())
    if action == "reply":
        typed = _field(body, "input", 182)
        if not typed:
            raise Refused("type an answer first")
        return jsonify(net.reply(phone, typed).as_dict())
    if action == "cancel":
        net.cancel(phone)
        return jsonify({"kind": "END", "text": "", "ms": 0})
    raise Refused("action must be dial, reply or cancel")


@bp.post("/api/sms")
def sms() -> tuple[Response, int]:
    body = _body()
    net = _network()
    phone = _known(net, _field(body, "phone", 20))
    return jsonify(net.write_sms(phone, _field(body, "text", 918))), 201


@bp.post("/api/paybill")
def paybill() -> Response:
    body = _body()
    net = _network()
    phone = _known(net, _field(body, "phone", 20))
    done = Mpesa(net).pay_bill(phone, _field(body, "business", 12), _field(body, "account", 24),
                               _field(body, "amount", 12), _field(body, "pin", 8))
    return jsonify({"ok": done.ok, "text": done.text})


@bp.post("/api/prompt")
def prompt() -> Response:
    """`{"phone", "id", "accept": true|false, "pin"}`: the STK prompt answered."""
    body = _body()
    net = _network()
    phone = _known(net, _field(body, "phone", 20))
    done = Mpesa(net).answer_prompt(phone, _field(body, "id", 80), body.get("accept") is True,
                                    _field(body, "pin", 8))
    return jsonify({"ok": done.ok, "text": done.text})


@bp.post("/api/clock")
def clock() -> Response:
    """`{"to": "hour" | "day" | "week" | "due" | "now"}`: move time forward, then run
    the periodic duties as of the new moment (`now` runs them without moving)."""
    net = _network()
    svc = net.svc
    to = _field(_body(), "to", 10)
    advance = getattr(svc.clock, "advance", None)
    if to != "now" and advance is None:
        raise Refused("this process's clock cannot be moved")
    if to in STEPS:
        advance(seconds=STEPS[to].total_seconds())  # type: ignore[misc]
    elif to == "due":
        target = _next_due(svc.now())
        if target is None:
            raise Refused("no loan has a payment due")
        advance(seconds=(target - svc.now()).total_seconds())  # type: ignore[misc]
    elif to != "now":
        raise Refused("to must be hour, day, week, due or now")
    now = svc.now()
    report = duties.tick(svc, now)
    ran = {name: count for name, count in report.done.items() if count}
    net.note("clock", "", f"clock {to}: {_clock(now)['local']}; duties {ran or 'nothing to do'}"
             + (f"; FAILED {sorted(report.failed)}" if report.failed else ""), 0)
    return jsonify({"clock": _clock(now), "done": report.done, "failed": report.failed})


def _next_due(now: datetime) -> datetime | None:
    """09:00 local on the next day an unpaid installment falls due after today."""
    svc = services()
    zone = svc.settings.zone
    today = now.astimezone(zone).date()
    with svc.uow() as uow:
        day = uow.session.scalar(
            select(Installment.due_on).join(Loan, Loan.id == Installment.loan_id)
            .where(Loan.status.in_(BEING_REPAID), Installment.paid < Installment.amount,
                   Installment.due_on > today)
            .order_by(Installment.due_on).limit(1))
    if day is None:
        return None
    return datetime.combine(day, MORNING, tzinfo=zone)


def _known(net: Network, phone: str) -> str:
    if phone not in net.phones():
        raise Refused("that phone is not on the page")
    return phone

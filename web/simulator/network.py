"""The simulated mobile network behind the phones of `/simulator`: USSD sessions as
Africa's Talking runs them, SMS to the short code, the phones on the page, and the log
of every hop, SMS and callback with its timing.

Every request reaches the service through its real hooks (`/hooks/ussd`,
`/hooks/ussd/events`, `/hooks/sms`, `/hooks/sms/delivery`, the Daraja hooks) with the
gateway's own fields and the webhook key, in this process (a WSGI call, so the key never
reaches the browser). The state lives in Redis, so every web process of the demo agrees.
Session timeouts run on the wall clock, as the network's do, never on the simulated one.
"""
from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, cast

from flask import Flask

from core.phones import try_normalise
from runtime.services import Services

PREFIX = "harambee:sim:"
NETWORK_CODE = "63902"  # Safaricom
MMI_ERROR = "Connection problem or invalid MMI code."
LOG_KEEP = 300
_PIN_ASKED = re.compile(r"\bPIN\b")


def wall() -> float:
    """Wall-clock seconds: what the network's timers run on (tests replace it)."""
    return time.time()


class Refused(Exception):
    """A phone action the handset itself would not take (bad number, no session)."""


@dataclass
class Screen:
    """What the handset shows after an action: `CON` waits for an answer, `END` closes,
    `DROPPED` is the network giving up, `ERROR` a dial the network does not know."""

    kind: str
    text: str
    ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Session:
    id: str
    text: str  # everything typed, hops joined by `*`, as Africa's Talking sends it
    started: float  # wall-clock seconds
    last: float
    screen: str
    hops: int


class Network:
    """One request's view of the simulated network (cheap: made per request)."""

    def __init__(self, svc: Services, app: Flask) -> None:
        self.svc = svc
        self.app = app
        self.redis = svc.redis.client
        self.settings = svc.settings

    # --- the hooks, called as the gateways call them ---------------------------------

    def hook(self, path: str, *, form: dict[str, str] | None = None,
             body: dict[str, Any] | None = None, keyed: bool = True) -> tuple[int, str, float]:
        """POST to one of our hooks in this process: (status, body, milliseconds)."""
        started = time.perf_counter()
        query = {"key": self.settings.security.webhook_key} if keyed else {}
        response = self.app.test_client().post(path, query_string=query, data=form,
                                               json=body)
        ms = round((time.perf_counter() - started) * 1000, 1)
        return response.status_code, response.get_data(as_text=True), ms

    # --- the phones on the page -------------------------------------------------------

    def phones(self) -> list[str]:
        added = [p.decode() for p in cast(list[bytes], self.redis.lrange(PREFIX + "phones", 0, -1))]
        return list(dict.fromkeys([*self.settings.simulator.phones, *added]))

    def add_phone(self, raw: str) -> str:
        phone = try_normalise(raw.strip()[:32], self.settings.app.default_region)
        if phone is None:
            raise Refused(f"not a phone number: {raw.strip()[:32]!r}")
        if phone not in self.phones():
            self.redis.rpush(PREFIX + "phones", phone)
        return phone

    def remove_phone(self, phone: str) -> None:
        self.redis.lrem(PREFIX + "phones", 0, phone)

    # --- USSD ----------------------------------------------------------------------------

    def dial(self, phone: str, code: str) -> Screen:
        """Dial a code: the service code, or it with answers (`*384*123*1#`)."""
        self._drop_if_stale(phone)
        service = self.settings.ussd.service_code
        code = code.strip()
        if code == service:
            typed = ""
        elif code.startswith(service[:-1] + "*") and code.endswith("#"):
            typed = code[len(service):-1]
        else:
            self.note("ussd", phone, f"dialled {code[:40]}: no such service", 0)
            return Screen("ERROR", MMI_ERROR)
        old = self.session(phone)
        if old is not None:  # a new dial ends whatever was on the screen
            self._end(phone, old, "Incomplete", "the caller dialled again")
        now = wall()
        session = Session(f"ATUid_sim_{uuid.uuid4().hex[:20]}", typed, now, now, "", 0)
        return self._hop(phone, session, f"dialled {code}")

    def reply(self, phone: str, typed: str) -> Screen:
        session = self.session(phone)
        if session is None:
            raise Refused("no USSD session on this phone: dial first")
        reason = self._stale(session)
        if reason:
            self._end(phone, session, "Incomplete", reason)
            return Screen("DROPPED", MMI_ERROR)
        shown = "*" * len(typed) if _PIN_ASKED.search(session.screen) else typed
        session.text = f"{session.text}*{typed}" if session.text else typed
        return self._hop(phone, session, f"typed {shown!r}")

    def cancel(self, phone: str) -> None:
        session = self.session(phone)
        if session is not None:
            self._end(phone, session, "Incomplete", "the caller pressed cancel")

    def session(self, phone: str) -> Session | None:
        raw = cast(bytes | None, self.redis.get(PREFIX + "ussd:" + phone))
        return Session(**json.loads(raw)) if raw else None

    def seconds_left(self, session: Session) -> int:
        sim = self.settings.simulator
        now = wall()
        return max(0, int(min(session.last + sim.hop_timeout_seconds,
                              session.started + sim.session_seconds) - now))

    def _hop(self, phone: str, session: Session, what: str) -> Screen:
        form = {"sessionId": session.id, "serviceCode": self.settings.ussd.service_code,
                "phoneNumber": phone, "networkCode": NETWORK_CODE, "text": session.text}
        status, answer, ms = self.hook("/hooks/ussd", form=form)
        session.hops += 1
        session.last = wall()
        kind, _, screen = answer.partition(" ")
        if status != 200 or kind not in ("CON", "END"):
            self.note("ussd", phone, f"{what}: the hook answered {status}", ms)
            self._forget(phone)
            return Screen("ERROR", MMI_ERROR, ms)
        limit = self.settings.ussd.max_chars
        self.note("ussd", phone, f"{what} -> {kind} ({len(answer)}/{limit} characters)", ms)
        if len(answer) > limit:  # the network would cut it; we show what it would
            screen = answer[:limit][len(kind) + 1:]
        session.screen = screen
        if kind == "END":
            self._end(phone, session, "Success", "")
        else:
            ttl = self.settings.simulator.session_seconds + 60
            self.redis.set(PREFIX + "ussd:" + phone, json.dumps(asdict(session)), ex=ttl)
        return Screen(kind, screen, ms)

    def _stale(self, session: Session) -> str:
        sim = self.settings.simulator
        now = wall()
        if now - session.started > sim.session_seconds:
            return f"the session passed {sim.session_seconds} s"
        if now - session.last > sim.hop_timeout_seconds:
            return f"no answer within {sim.hop_timeout_seconds} s"
        return ""

    def _drop_if_stale(self, phone: str) -> bool:
        session = self.session(phone)
        reason = self._stale(session) if session is not None else ""
        if session is not None and reason:
            self._end(phone, session, "Incomplete", reason)
            return True
        return False

    def _end(self, phone: str, session: Session, status: str, reason: str) -> None:
        """The network's end-of-session notification, as Africa's Talking sends it."""
        if not self._forget(phone):
            return  # another process ended it first
        form = {"sessionId": session.id, "serviceCode": self.settings.ussd.service_code,
                "phoneNumber": phone, "networkCode": NETWORK_CODE, "status": status,
                "input": session.text.rsplit("*", 1)[-1], "lastAppResponse": session.screen,
                "hopsCount": str(session.hops),
                "durationInMillis": str(int((wall() - session.started) * 1000)),
                "cost": "0.0", "errorMessage": reason,
                "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        code, _, ms = self.hook("/hooks/ussd/events", form=form)
        what = "ended" if status == "Success" else f"dropped: {reason}"
        self.note("ussd", phone, f"session {what} (event {status} -> {code})", ms)

    def _forget(self, phone: str) -> bool:
        return bool(self.redis.delete(PREFIX + "ussd:" + phone))

    def expire_sessions(self, phones: list[str]) -> None:
        """Drop the sessions the network would have dropped by now."""
        for phone in phones:
            self._drop_if_stale(phone)

    # --- SMS -----------------------------------------------------------------------------

    def write_sms(self, phone: str, text: str) -> dict[str, Any]:
        """Send an SMS from the phone to our short code, through `/hooks/sms`."""
        text = text.strip()
        if not text:
            raise Refused("an empty SMS is not sent")
        short_code = self.settings.simulator.short_code
        message_id = f"sim-in-{uuid.uuid4().hex[:16]}"
        form = {"from": phone, "to": short_code, "text": text[:918], "id": message_id,
                "date": time.strftime("%Y-%m-%d %H:%M:%S"), "linkId": "",
                "networkCode": NETWORK_CODE}
        status, _, ms = self.hook("/hooks/sms", form=form)
        state = "Sent" if status == 200 else f"Failed ({status})"
        written = {"id": message_id, "to": short_code, "text": text[:918],
                   "at": self.svc.now().timestamp(), "state": state}
        key = PREFIX + "written:" + phone
        self.redis.rpush(key, json.dumps(written))
        self.redis.ltrim(key, -100, -1)
        self.note("sms", phone, f"SMS to {short_code}: {_first_word(text)} -> {status}", ms)
        return written

    def written(self, phone: str) -> list[dict[str, Any]]:
        rows = cast(list[bytes], self.redis.lrange(PREFIX + "written:" + phone, 0, -1))
        return [json.loads(row) for row in rows]

    def report_delivered(self, phone: str, message_id: str) -> None:
        """The network's delivery report for a message that reached the handset."""
        form = {"id": message_id, "status": "Success", "phoneNumber": phone,
                "networkCode": NETWORK_CODE, "failureReason": "", "retryCount": "0"}
        status, _, ms = self.hook("/hooks/sms/delivery", form=form)
        self.note("sms", phone, f"delivery report Success -> {status}", ms)

    # --- the log -------------------------------------------------------------------------

    def note(self, kind: str, phone: str, what: str, ms: float) -> None:
        n = cast(int, self.redis.incr(PREFIX + "log:n"))
        entry = {"n": n, "at": wall(), "kind": kind, "phone": phone, "what": what,
                 "ms": ms}
        with self.redis.pipeline() as pipe:
            pipe.lpush(PREFIX + "log", json.dumps(entry))
            pipe.ltrim(PREFIX + "log", 0, LOG_KEEP - 1)
            pipe.execute()

    def log_since(self, n: int) -> list[dict[str, Any]]:
        raw = cast(list[bytes], self.redis.lrange(PREFIX + "log", 0, LOG_KEEP - 1))
        rows = [json.loads(row) for row in raw]
        return [row for row in reversed(rows) if row["n"] > n]


def _first_word(text: str) -> str:
    """What the log shows of an SMS: its command word (a pledge code or PIN stays out)."""
    word = text.split(maxsplit=1)[0] if text.split() else ""
    return f"{word[:12]} ..." if len(text.split()) > 1 else word[:12]

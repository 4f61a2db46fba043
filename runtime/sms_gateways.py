"""SMS gateways: `console` (the default; prints and "sends"), `africastalking` (the
official SDK, sandbox or live by configuration) and `simulator` (the demo's: keeps each
message in Redis for the phones of `/simulator` to receive).

A gateway sends one text to one or more phones (a bulk request) and says, per phone,
`sent` (with the provider's message id and cost), `retry` (worth trying again later)
or `invalid` (the number will never take it: do not retry).
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

import africastalking
import redis
import requests
from africastalking.Service import AfricasTalkingException

from core.config import Settings
from core.phones import masked

log = logging.getLogger(__name__)

SENT, RETRY, INVALID = "sent", "retry", "invalid"

# Africa's Talking recipient statusCode -> what we do (docs/protocols.md).
AT_STATUS: dict[int, str] = {
    100: SENT, 101: SENT, 102: SENT,  # Processed, Sent, Queued
    401: RETRY,  # RiskHold
    402: RETRY,  # InvalidSenderId: our configuration; fixable, so keep the message
    403: INVALID,  # InvalidPhoneNumber
    404: INVALID,  # UnsupportedNumberType
    405: RETRY,  # InsufficientBalance: retry after a top-up
    406: INVALID,  # UserInBlacklist: they sent STOP to the short code
    407: RETRY,  # CouldNotRoute
    500: RETRY, 501: RETRY, 502: RETRY,  # InternalServerError, GatewayError, RejectedByGateway
}
_AT_PHONE = re.compile(r"^\+\d{1,3}\d{3,}$")  # the SDK's own check, applied per phone first


@dataclass(frozen=True)
class Outcome:
    """What the gateway said about one phone."""

    state: str
    message_id: str | None = None
    cost: str | None = None
    detail: str = ""


class SmsGateway(Protocol):
    name: str

    def send(self, text: str, phones: Sequence[str]) -> dict[str, Outcome]:
        """Send `text` to each phone (distinct E.164 numbers); an outcome per phone."""
        ...


class ConsoleGateway:
    """Sends nothing: logs each message with a masked phone and calls it sent. The text
    is logged only at debug level (it may hold a pledge code); the outbox row keeps it
    (see `harambee outbox`)."""

    name = "console"

    def send(self, text: str, phones: Sequence[str]) -> dict[str, Outcome]:
        outcomes = {}
        for phone in phones:
            message_id = f"console-{uuid.uuid4().hex[:16]}"
            log.info("SMS to %s (%s): %d characters", masked(phone), message_id, len(text))
            log.debug("SMS %s: %s", message_id, text)
            outcomes[phone] = Outcome(SENT, message_id, None, "console")
        return outcomes


@dataclass(frozen=True)
class Received:
    """A message as the simulator's handset holds it; `state` as Africa's Talking
    reports delivery: `Sent` (with the network), then `Success` (on the handset)."""

    id: str
    sender: str
    text: str
    at: float  # the service's time (which the demo can move), seconds since the epoch
    state: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "sender": self.sender, "text": self.text, "at": self.at,
                "state": self.state}


class SimulatorGateway:
    """The network of the demo's simulated phones: a sent message waits in Redis for
    its handset (every process of the demo sees the same messages); the simulator
    marks it delivered when the phone shows it, and reports that to our delivery hook
    as the real network would. Production refuses this gateway (`production_gaps`)."""

    name = "simulator"
    KEEP = 200  # messages kept per phone
    PREFIX = "harambee:sim:sms:"

    def __init__(self, client: redis.Redis, sender: str,
                 clock: Callable[[], datetime]) -> None:
        self.client = client
        self.sender = sender
        self.clock = clock

    def send(self, text: str, phones: Sequence[str]) -> dict[str, Outcome]:
        outcomes = {}
        for phone in phones:
            message_id = f"sim-{uuid.uuid4().hex[:16]}"
            try:
                self.put(phone, text, self.sender, message_id=message_id, state="Sent")
            except redis.RedisError as exc:
                outcomes[phone] = Outcome(RETRY, detail=f"simulator: {type(exc).__name__}")
                continue
            outcomes[phone] = Outcome(SENT, message_id, "KES 0.0000", "simulator")
        return outcomes

    def put(self, phone: str, text: str, sender: str, *, message_id: str = "",
            state: str = "Success") -> Received:
        """Place a message on a phone (the M-Pesa texts arrive this way, delivered)."""
        received = Received(message_id or f"sim-{uuid.uuid4().hex[:16]}", sender, text,
                            self.clock().timestamp(), state)
        key = self.PREFIX + phone
        with self.client.pipeline() as pipe:
            pipe.hset(key + ":all", received.id, json.dumps(received.as_dict()))
            pipe.rpush(key, received.id)
            pipe.ltrim(key, -self.KEEP, -1)
            pipe.execute()
        return received

    def received(self, phone: str) -> list[Received]:
        """What reached the phone, oldest first."""
        key = self.PREFIX + phone
        ids = [i.decode() for i in cast(list[bytes], self.client.lrange(key, 0, -1))]
        if not ids:
            return []
        rows = cast(list[bytes | None], self.client.hmget(key + ":all", ids))
        return [Received(**json.loads(row)) for row in rows if row]

    def deliver(self, phone: str) -> list[Received]:
        """Mark every message still with the network as on the handset; returns those,
        each once however many pages ask at the same time."""
        key = self.PREFIX + phone
        delivered = []
        for message in self.received(phone):
            if message.state == "Sent" and self.client.sadd(key + ":delivered", message.id):
                on_phone = Received(message.id, message.sender, message.text, message.at,
                                    "Success")
                self.client.hset(key + ":all", message.id, json.dumps(on_phone.as_dict()))
                delivered.append(on_phone)
        return delivered


class AfricasTalkingGateway:
    """The official SDK (`africastalking.SMS.send`), one request per text, many phones.

    The SDK keeps its base URL in the SMS service's `_baseUrl`; `gateway.api_base_url`
    overrides it (tests point it at a local fake server speaking AT's API).
    """

    name = "africastalking"

    def __init__(self, username: str, api_key: str, *, sender_id: str = "",
                 base_url: str = "") -> None:
        africastalking.initialize(username, api_key)
        self._sms = africastalking.SMS
        if base_url:
            self._sms._baseUrl = base_url.rstrip("/") + "/version1"
        self._sender_id = sender_id or None

    def send(self, text: str, phones: Sequence[str]) -> dict[str, Outcome]:
        outcomes = {p: Outcome(INVALID, detail="not a number AT accepts")
                    for p in phones if not _AT_PHONE.match(p)}
        good = [p for p in phones if p not in outcomes]
        if not good:
            return outcomes
        try:
            response = self._sms.send(text, good, sender_id=self._sender_id)
        except AfricasTalkingException as exc:  # a non-2xx answer: try again later
            return {**outcomes, **{p: Outcome(RETRY, detail=f"AT: {exc}"[:200]) for p in good}}
        except (requests.RequestException, ValueError) as exc:
            return {**outcomes,
                    **{p: Outcome(RETRY, detail=f"{type(exc).__name__}: {exc}"[:200])
                       for p in good}}
        return {**outcomes, **_recipients(response, good)}


def _recipients(response: Any, phones: Sequence[str]) -> dict[str, Outcome]:
    """Per-phone outcomes from AT's JSON; anything unexpected is retried."""
    try:
        listed = response["SMSMessageData"]["Recipients"]
    except (TypeError, KeyError):
        detail = f"unexpected AT answer: {str(response)[:120]}"
        return {p: Outcome(RETRY, detail=detail) for p in phones}
    outcomes: dict[str, Outcome] = {}
    for item in listed if isinstance(listed, list) else []:
        if not isinstance(item, dict):
            continue
        number = str(item.get("number", ""))
        try:
            code = int(item.get("statusCode", 0))
        except (TypeError, ValueError):
            code = 0
        state = AT_STATUS.get(code, RETRY)
        detail = f"{code} {item.get('status', '')}".strip()
        message_id = item.get("messageId") if state == SENT else None
        if state == SENT and (not message_id or message_id == "None"):
            message_id = None
        outcomes[number] = Outcome(state, message_id, item.get("cost"), detail)
    for phone in phones:
        outcomes.setdefault(phone, Outcome(RETRY, detail="not in AT's answer"))
    return {p: outcomes[p] for p in phones}


_GATEWAYS: dict[tuple[str, ...], SmsGateway] = {}


def sms_gateway(settings: Settings) -> SmsGateway:
    """The configured gateway, made once per process and configuration."""
    g = settings.gateway
    key = (g.sms, g.username, g.api_key, g.sender_id, g.api_base_url)
    if key not in _GATEWAYS:
        if g.sms == "africastalking":
            _GATEWAYS[key] = AfricasTalkingGateway(g.username, g.api_key,
                                                   sender_id=g.sender_id,
                                                   base_url=g.api_base_url)
        else:
            _GATEWAYS[key] = ConsoleGateway()
    return _GATEWAYS[key]

"""A fake of Safaricom's Daraja API, for tests and the demo. Standard library only, and
nothing from this project, so it also runs on its own:

    python -m mpesa.fake --port 8001 [--consumer-key K --consumer-secret S] [--float 1000000]

prints its base URL and serves until killed. Tests start one in-process:
`fake = FakeDaraja().start()` ... `fake.stop()`.

It speaks Daraja's API as docs/mpesa.md describes it, and checks requests as Daraja
does (basic auth, bearer tokens, the STK password, lengths, whole amounts, phone
numbers): a refusal is `{"requestId", "errorCode", "errorMessage"}` with an HTTP status.

    GET  /oauth/v1/generate?grant_type=client_credentials   basic auth; a token for
                                                             `token_lifetime` seconds
    POST /mpesa/c2b/v1/registerurl          remembers the URLs; refuses URLs containing
                                            m-pesa, mpesa, safaricom, exe, cmd, sql, query
    POST /mpesa/stkpush/v1/processrequest   keeps the prompt pending until a control call
    POST /mpesa/b2c/v3/paymentrequest       (and v1) answers at once; the Result follows
    POST /mpesa/transactionstatus/v1/query  the Result follows
    POST /mpesa/accountbalance/v1/query     the Result follows

Results and callbacks are POSTed as JSON (`Content-Type: application/json`) by one
background thread, in order; `wait_idle()` (or `POST /fake/idle`) waits until all went.

B2C. An OriginatorConversationID seen before is refused as Daraja documents it: HTTP
500, errorCode 500.002.1001, "Duplicate OriginatorConversationID.", and nothing is paid;
so the fake can never pay one OriginatorConversationID twice, and `payments` records
every payment it did make. A payment debits the float (the Utility account, which B2C
pays from); failures come on demand, for one OriginatorConversationID or one phone:

    insufficient   ResultCode 1 "The balance is insufficient for the transaction."
                   (also whenever the float is short)
    invalid        ResultCode SFC_IC0003 "The operator does not exist." (not on M-Pesa)
    unregistered   ResultCode 2040 "Credit Party customer type (Unregistered or
                   Registered Customer) can't be supported by the service."
    timeout        never processed, no Result; with notify, a Result posted to the
                   QueueTimeOutURL instead (ResultCode 1 "The service request has timed out.")
    lost           paid, but the Result never arrives (find it by Transaction Status)

A wrong InitiatorName or SecurityCredential gives ResultCode 2001 "The initiator
information is invalid.", an amount under 10 ResultCode 2, over 250,000 ResultCode 3.

Transaction Status answers, for a B2C by OriginatorConversationID or by receipt (any
receipt the fake made): ResultCode 0 with TransactionStatus Completed (ReceiptNo,
Amount, FinalisedTime...) or Failed; for anything it never processed ResultCode 2033
"The transaction receipt number cannot be found by the specified OriginatorConversationID
or ConversationID." (Safaricom's page lists only SFC_IC0003 for this API; the code and
text are the ones an integrator's SDK records, so treat them as the fake's guess).

Control endpoints (JSON in and out, no auth: bind it to 127.0.0.1):

    GET  /fake/state                             counts, float, registered URLs
    GET  /fake/stk/pending[?phone=2547...]       prompts waiting for the customer
    POST /fake/stk/<CheckoutRequestID>/accept    {"pin": "1234"} optional: a wrong PIN
                                                 (see /fake/pins) ends it with 2001
    POST /fake/stk/<CheckoutRequestID>/cancel    ends it with 1032
    POST /fake/stk/<CheckoutRequestID>/fail      {"code": 1037, "desc": "..."}
    POST /fake/pins                              {"phone": "2547...", "pin": "1234"}
    POST /fake/b2c/fail                          {"mode": "...", "phone": "2547..." or
                                                 "originator_conversation_id": "...",
                                                 "notify": false}
    POST /fake/b2c/clear                         forget every failure set up
    GET  /fake/b2c/payments                      every B2C payment made
    POST /fake/float                             {"amount": "1000.00",
                                                 "account": "utility" | "working"}
    POST /fake/c2b/pay                           {"phone", "amount" (whole shillings),
                                                 "account", "name", "msisdn":
                                                 "masked" | "full" | "hashed"}: validation
                                                 URL, then (if accepted) confirmation URL;
                                                 answers {"trans_id", "accepted", ...}
    POST /fake/c2b/replay                        {"trans_id": "..."}: the confirmation again
    GET  /fake/deliveries[?after=N]              every callback posted (after the N-th), its
                                                 answer and how long it took (ms)
    POST /fake/deliveries/<n>/replay             post callback n again
    POST /fake/fail                              {"status": 503, "count": 1, "path":
                                                 "/mpesa/b2c"}: the next matching Daraja
                                                 requests answer that status
    POST /fake/delay                             {"seconds": 2}: hold every Daraja answer
                                                 (after doing the work)
    POST /fake/tokens/expire                     every token stops working
    POST /fake/idle                              {"timeout": 5}: wait for the callbacks

Bounded: the server's and the callback thread's loops end on `stop()`, which joins them;
every callback has a timeout (`callback_timeout`).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import queue
import random
import re
import signal
import string
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

NAIROBI = timezone(timedelta(hours=3), "EAT")  # no daylight saving; no tz database needed
FORBIDDEN_URL_WORDS = ("m-pesa", "mpesa", "safaricom", "exe", "cmd", "sql", "query")
B2C_COMMANDS = ("BusinessPayment", "SalaryPayment", "PromotionPayment")
B2C_FAILURES = {
    "insufficient": ("1", "The balance is insufficient for the transaction."),
    "invalid": ("SFC_IC0003", "The operator does not exist."),
    "unregistered": ("2040", "Credit Party customer type (Unregistered or Registered "
                             "Customer) can't be supported by the service."),
    "initiator": ("2001", "The initiator information is invalid."),
    "below_minimum": ("2", "Declined due to limit rule: less than the minimum transaction "
                           "amount."),
    "above_maximum": ("3", "Declined due to limit rule: greater than the maximum "
                           "transaction amount."),
}
B2C_MODES = ("insufficient", "invalid", "unregistered", "timeout", "lost")
NOT_FOUND = ("2033", "The transaction receipt number cannot be found by the specified "
                     "OriginatorConversationID or ConversationID.")
QUEUE_TIMEOUT = ("1", "The service request has timed out.")
STK_CODES = {"0": "The service request is processed successfully.",
             "1": "The balance is insufficient for the transaction.",
             "1032": "Request cancelled by user",
             "1037": "DS timeout user cannot be reached",
             "2001": "The initiator information is invalid."}
B2C_MIN, B2C_MAX = 10, 250_000  # whole shillings
_PHONE = re.compile(r"254[17][0-9]{8}")
_URL = re.compile(r"https?://[^\s/?#]+(/[^\s]*)?")


class Refused(Exception):
    """A Daraja request refused synchronously: HTTP status, errorCode, errorMessage."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def bad(field_name: str) -> Refused:
    return Refused(400, "400.002.02", f"Bad Request - Invalid {field_name}")


@dataclass
class Prompt:
    """An STK push waiting for the customer."""

    checkout_request_id: str
    merchant_request_id: str
    phone: str  # 2547...
    amount: int  # whole shillings
    account_reference: str
    description: str
    shortcode: str
    callback_url: str
    created: str
    state: str = "pending"  # pending | paid | cancelled | failed
    result_code: str = ""
    receipt: str = ""


@dataclass
class B2cRequest:
    originator_conversation_id: str
    conversation_id: str
    phone: str
    amount: int  # whole shillings
    command: str
    remarks: str
    occasion: str
    result_url: str
    timeout_url: str
    initiator_ok: bool
    state: str = "queued"  # queued | completed | failed | timed_out
    result_code: str = ""
    result_desc: str = ""
    receipt: str = ""  # set when completed
    transaction_id: str = ""  # M-Pesa's id for it, completed or failed
    completed: str = ""  # YYYYMMDDHHmmss, Nairobi


@dataclass
class Payment:
    """Money the fake actually moved by B2C."""

    originator_conversation_id: str
    receipt: str
    phone: str
    amount: int  # whole shillings
    at: str  # YYYYMMDDHHmmss, Nairobi


@dataclass
class C2bRecord:
    trans_id: str
    body: dict[str, Any]
    accepted: bool
    confirmation_url: str


@dataclass
class Delivery:
    """One callback the fake posted, and what it got back."""

    id: int
    kind: str
    url: str
    body: dict[str, Any]
    status: int | None = None
    answer: str = ""
    error: str = ""
    ms: float = 0.0  # how long the callback took to answer


@dataclass
class FakeDaraja:
    consumer_key: str = "fake-consumer-key"
    consumer_secret: str = "fake-consumer-secret"
    shortcode: str = "174379"
    passkey: str = "fake-passkey"
    b2c_shortcode: str = ""  # empty: B2C from the paybill, as mpesa.b2c_shortcode
    initiator_name: str = "testapi"
    security_credential: str = "fake-security-credential"
    float_cents: int = 1_000_000 * 100  # the Utility account: what B2C pays from
    working_cents: int = 0
    host: str = "127.0.0.1"
    port: int = 0
    token_lifetime: int = 3599
    result_delay: float = 0.02  # seconds between accepting a request and its Result
    callback_timeout: float = 5.0
    c2b_validation: bool = True  # external validation enabled on the paybill
    seed: int | None = None

    oauth_requests: int = 0
    requests_seen: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    registered: dict[str, dict[str, str]] = field(default_factory=dict)
    prompts: dict[str, Prompt] = field(default_factory=dict)
    b2c_requests: dict[str, B2cRequest] = field(default_factory=dict)
    payments: list[Payment] = field(default_factory=list)
    c2b_payments: dict[str, C2bRecord] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    pins: dict[str, str] = field(default_factory=dict)
    fail_by_ocid: dict[str, tuple[str, bool]] = field(default_factory=dict)
    fail_by_phone: dict[str, tuple[str, bool]] = field(default_factory=dict)
    fail_next: list[tuple[int, str]] = field(default_factory=list)  # (status, path prefix)
    answer_delay: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._tokens: dict[str, float] = {}
        self._receipts: set[str] = set()
        self._random = random.Random(self.seed)
        self._ids = itertools.count(1)
        self._jobs: queue.Queue[tuple[float, Callable[[], object]] | None] = queue.Queue()
        self._busy = 0
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # --- running -----------------------------------------------------------------------

    @property
    def b2c_party(self) -> str:
        """The short code B2C pays from."""
        return self.b2c_shortcode or self.shortcode

    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> FakeDaraja:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

            def log_message(self, *args: Any) -> None:
                pass

        self._stopping.clear()
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = False
        self._server.block_on_close = True  # server_close() joins the request threads
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                             name="fake-daraja-http"),
            threading.Thread(target=self._work, name="fake-daraja-callbacks"),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._idle:
            self._idle.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=self.callback_timeout + 5)
        self._threads = []
        self._server = None

    def __enter__(self) -> FakeDaraja:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every queued Result and callback was posted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
            return not self._busy

    def _later(self, job: Callable[[], object], delay: float | None = None) -> None:
        with self._lock:
            self._busy += 1
        self._jobs.put((time.monotonic() + (self.result_delay if delay is None else delay), job))

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                break
            due, job = item
            if not self._stopping.is_set():
                self._stopping.wait(max(0.0, due - time.monotonic()))
            try:
                if not self._stopping.is_set():
                    job()
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    # --- the Python controls (the /fake/... endpoints call these) ----------------------

    def pending_stk(self, phone: str | None = None) -> list[Prompt]:
        wanted = _msisdn(phone) if phone else None
        with self._lock:
            return [p for p in self.prompts.values()
                    if p.state == "pending" and (wanted is None or p.phone == wanted)]

    def accept_stk(self, checkout_request_id: str, pin: str | None = None) -> Prompt:
        """The customer enters their PIN: paid (a receipt), or 2001 for a wrong PIN."""
        with self._lock:
            prompt = self._pending(checkout_request_id)
            expected = self.pins.get(prompt.phone)
            if pin is not None and expected is not None and pin != expected:
                return self._end_stk(prompt, "2001")
            return self._end_stk(prompt, "0")

    def cancel_stk(self, checkout_request_id: str) -> Prompt:
        with self._lock:
            return self._end_stk(self._pending(checkout_request_id), "1032")

    def fail_stk(self, checkout_request_id: str, code: str | int = "1037",
                 desc: str | None = None) -> Prompt:
        with self._lock:
            return self._end_stk(self._pending(checkout_request_id), str(code), desc)

    def fail_b2c(self, mode: str, *, phone: str | None = None,
                 originator_conversation_id: str | None = None, notify: bool = False) -> None:
        """Make B2C payments to `phone`, or one OriginatorConversationID, fail this way."""
        if mode not in B2C_MODES:
            raise ValueError(f"mode must be one of {', '.join(B2C_MODES)}")
        if (phone is None) == (originator_conversation_id is None):
            raise ValueError("give phone or originator_conversation_id")
        with self._lock:
            if phone is not None:
                self.fail_by_phone[_msisdn(phone)] = (mode, notify)
            else:
                self.fail_by_ocid[str(originator_conversation_id)] = (mode, notify)

    def clear_failures(self) -> None:
        with self._lock:
            self.fail_by_phone.clear()
            self.fail_by_ocid.clear()
            self.fail_next.clear()
            self.answer_delay = 0.0

    def set_float(self, shillings: Decimal | int | str, account: str = "utility") -> None:
        cents = _cents(shillings)
        with self._lock:
            if account == "utility":
                self.float_cents = cents
            elif account == "working":
                self.working_cents = cents
            else:
                raise ValueError("account must be utility or working")

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def fail_next_requests(self, status: int, count: int = 1, path: str = "/") -> None:
        with self._lock:
            self.fail_next.extend([(status, path)] * count)

    def paid_ocids(self) -> list[str]:
        with self._lock:
            return [p.originator_conversation_id for p in self.payments]

    def pay_bill(self, phone: str, amount: int | str, account: str, *, name: str = "Jane Doe",
                 msisdn: str = "masked") -> dict[str, Any]:
        """A customer pays our paybill from `phone`: Daraja's validation call (when
        enabled and registered), then, if accepted, its confirmation call."""
        number = _msisdn(phone)
        try:
            shillings = int(str(amount))
        except ValueError:
            raise ValueError("amount must be whole shillings") from None
        if not 1 <= shillings <= B2C_MAX:
            raise ValueError("amount must be 1 to 250,000 shillings")
        if msisdn not in ("masked", "full", "hashed"):
            raise ValueError("msisdn must be masked, full or hashed")
        first, _, last = name.partition(" ")
        with self._lock:
            trans_id = self._receipt()
            urls = self.registered.get(self.shortcode)
        shown = {"full": number, "masked": number[:5] + "****" + number[-3:],
                 "hashed": hashlib.sha256(number.encode()).hexdigest()}[msisdn]
        body: dict[str, Any] = {
            "TransactionType": "Pay Bill", "TransID": trans_id, "TransTime": _stamp(),
            "TransAmount": f"{shillings}.00", "BusinessShortCode": self.shortcode,
            "BillRefNumber": account, "InvoiceNumber": "", "OrgAccountBalance": "",
            "ThirdPartyTransID": "", "MSISDN": shown, "FirstName": first, "MiddleName": "",
            "LastName": last}
        outcome: dict[str, Any] = {"trans_id": trans_id, "accepted": True, "result_code": "0",
                                   "confirmation_status": None}
        if urls is None:  # nobody registered: M-Pesa completes the payment and tells no one
            outcome["notified"] = False
            return outcome
        if self.c2b_validation:
            delivery = self._post("c2b_validation", urls["ValidationURL"], body)
            code = _validation_code(delivery)
            if code is None:  # unreachable or not understood: the registered default
                accepted = urls["ResponseType"] == "Completed"
                code = "0" if accepted else "unreachable"
            outcome["result_code"] = code
            outcome["accepted"] = code == "0"
        if outcome["accepted"]:
            confirmed = dict(body, OrgAccountBalance=_amount_text(self.working_cents))
            with self._lock:
                self.c2b_payments[trans_id] = C2bRecord(trans_id, confirmed, True,
                                                        urls["ConfirmationURL"])
            delivery = self._post("c2b_confirmation", urls["ConfirmationURL"], confirmed)
            outcome["confirmation_status"] = delivery.status
        return outcome

    def replay_confirmation(self, trans_id: str) -> Delivery:
        with self._lock:
            record = self.c2b_payments.get(trans_id)
        if record is None:
            raise KeyError(trans_id)
        return self._post("c2b_confirmation", record.confirmation_url, record.body)

    def redeliver(self, delivery_id: int) -> Delivery:
        with self._lock:
            original = next((d for d in self.deliveries if d.id == delivery_id), None)
        if original is None:
            raise KeyError(delivery_id)
        return self._post(original.kind, original.url, original.body)

    def deliveries_of(self, kind: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.kind == kind]

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "base_url": self.base_url if self._server else None,
                "shortcode": self.shortcode, "b2c_shortcode": self.b2c_party,
                "float": _amount_text(self.float_cents),
                "working": _amount_text(self.working_cents),
                "oauth_requests": self.oauth_requests, "registered": self.registered,
                "pending_prompts": sum(p.state == "pending" for p in self.prompts.values()),
                "b2c_requests": len(self.b2c_requests), "payments": len(self.payments),
                "c2b_payments": len(self.c2b_payments), "deliveries": len(self.deliveries)}

    # --- HTTP --------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path.rstrip("/") or "/"
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(min(length, 1_000_000)) if length else b""
        with self._lock:
            self.requests_seen.append((method, path))
        try:
            if path.startswith("/fake/"):
                status, body = 200, self._control(method, path, parse_qs(parts.query), raw)
            else:
                status, body = self._daraja(method, path, parse_qs(parts.query),
                                            handler.headers.get("Authorization", ""), raw)
        except Refused as refusal:
            status, body = refusal.status, {
                "requestId": f"{self._random.randint(1000, 99999)}-{next(self._ids)}-1",
                "errorCode": refusal.code, "errorMessage": refusal.message}
        except (KeyError, ValueError, TypeError) as exc:  # control calls: a bad request
            status, body = (404 if isinstance(exc, KeyError) else 400), {"error": str(exc)}
        delay = self.answer_delay if not path.startswith("/fake/") else 0.0
        if delay:
            self._stopping.wait(delay)
        payload = _dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:  # the client gave up waiting (a timeout test): nothing to tell
            pass

    def _daraja(self, method: str, path: str, query: dict[str, list[str]], auth: str,
                raw: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            for i, (status, prefix) in enumerate(self.fail_next):
                if path.startswith(prefix):
                    del self.fail_next[i]
                    raise Refused(status, f"{status}.000.00", "Fake failure on demand")
        if path == "/oauth/v1/generate" and method == "GET":
            return 200, self._oauth(query, auth)
        routes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "/mpesa/c2b/v1/registerurl": self._register,
            "/mpesa/c2b/v2/registerurl": self._register,
            "/mpesa/stkpush/v1/processrequest": self._stk_push,
            "/mpesa/b2c/v3/paymentrequest": self._b2c,
            "/mpesa/b2c/v1/paymentrequest": self._b2c,
            "/mpesa/transactionstatus/v1/query": self._status,
            "/mpesa/accountbalance/v1/query": self._balance,
        }
        route = routes.get(path)
        if route is None or method != "POST":
            raise Refused(404, "404.001.01", "Resource not found")
        self._check_token(auth)
        try:
            body = json.loads(raw or b"null", parse_float=Decimal)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Refused(400, "400.002.05", "Invalid Request Payload")
        return 200, route(body)

    def _oauth(self, query: dict[str, list[str]], auth: str) -> dict[str, Any]:
        with self._lock:
            self.oauth_requests += 1
        if query.get("grant_type") != ["client_credentials"]:
            raise Refused(400, "400.008.02", "Invalid grant type passed")
        expected = base64.b64encode(
            f"{self.consumer_key}:{self.consumer_secret}".encode()).decode()
        if auth != f"Basic {expected}":
            raise Refused(400, "400.008.01", "Invalid Authentication passed")
        token = "".join(self._random.choices(string.ascii_letters + string.digits, k=28))
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime
        return {"access_token": token, "expires_in": str(self.token_lifetime)}

    def _check_token(self, auth: str) -> None:
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None or time.monotonic() >= expiry:
            raise Refused(401, "404.001.03", "Invalid Access Token")

    def _control(self, method: str, path: str, query: dict[str, list[str]],
                 raw: bytes) -> Any:
        body = json.loads(raw) if raw.strip() else {}
        if not isinstance(body, dict):
            raise ValueError("control calls take a JSON object")
        steps = path.split("/")[2:]
        if method == "GET":
            if steps == ["state"]:
                return self.state()
            if steps == ["stk", "pending"]:
                phones = query.get("phone")
                return [asdict(p) for p in self.pending_stk(phones[0] if phones else None)]
            if steps == ["b2c", "payments"]:
                with self._lock:
                    return [asdict(p) for p in self.payments]
            if steps == ["deliveries"]:  # ?after=N: only those after the N-th
                after = int(query.get("after", ["0"])[0])
                with self._lock:
                    return [asdict(d) for d in self.deliveries[max(0, after):]]
        elif method == "POST":
            if len(steps) == 3 and steps[0] == "stk":
                action = {"accept": lambda: self.accept_stk(steps[1], body.get("pin")),
                          "cancel": lambda: self.cancel_stk(steps[1]),
                          "fail": lambda: self.fail_stk(steps[1], body.get("code", "1037"),
                                                        body.get("desc"))}.get(steps[2])
                if action is not None:
                    return asdict(action())
            if steps == ["pins"]:
                with self._lock:
                    self.pins[_msisdn(str(body["phone"]))] = str(body["pin"])
                return {"ok": True}
            if steps == ["b2c", "fail"]:
                self.fail_b2c(str(body.get("mode")), phone=body.get("phone"),
                              originator_conversation_id=body.get("originator_conversation_id"),
                              notify=bool(body.get("notify")))
                return {"ok": True}
            if steps == ["b2c", "clear"]:
                self.clear_failures()
                return {"ok": True}
            if steps == ["float"]:
                self.set_float(body["amount"], str(body.get("account", "utility")))
                return self.state()
            if steps == ["c2b", "pay"]:
                return self.pay_bill(str(body["phone"]), body["amount"],
                                     str(body.get("account", "")),
                                     name=str(body.get("name", "Jane Doe")),
                                     msisdn=str(body.get("msisdn", "masked")))
            if steps == ["c2b", "replay"]:
                return asdict(self.replay_confirmation(str(body["trans_id"])))
            if len(steps) == 3 and steps[0] == "deliveries" and steps[2] == "replay":
                return asdict(self.redeliver(int(steps[1])))
            if steps == ["fail"]:
                self.fail_next_requests(int(body["status"]), int(body.get("count", 1)),
                                        str(body.get("path", "/")))
                return {"ok": True}
            if steps == ["delay"]:
                self.answer_delay = max(0.0, min(60.0, float(body.get("seconds", 0))))
                return {"ok": True}
            if steps == ["tokens", "expire"]:
                self.expire_tokens()
                return {"ok": True}
            if steps == ["idle"]:
                return {"idle": self.wait_idle(min(30.0, float(body.get("timeout", 5))))}
        raise KeyError(f"no control {method} {path}")

    # --- Daraja's operations -----------------------------------------------------------

    def _register(self, body: dict[str, Any]) -> dict[str, Any]:
        shortcode = str(body.get("ShortCode", ""))
        if shortcode not in (self.shortcode, self.b2c_party):
            raise bad("ShortCode")
        if body.get("ResponseType") not in ("Completed", "Cancelled"):
            raise bad("ResponseType")
        for key in ("ConfirmationURL", "ValidationURL"):
            url = body.get(key)
            if not isinstance(url, str) or not _URL.fullmatch(url) or any(
                    word in url.lower() for word in FORBIDDEN_URL_WORDS):
                raise bad(key)
        with self._lock:
            self.registered[shortcode] = {"ConfirmationURL": body["ConfirmationURL"],
                                          "ValidationURL": body["ValidationURL"],
                                          "ResponseType": body["ResponseType"]}
        return {"OriginatorCoversationID": self._request_id(), "ResponseCode": "0",
                "ResponseDescription": "Success"}

    def _stk_push(self, body: dict[str, Any]) -> dict[str, Any]:
        shortcode = str(body.get("BusinessShortCode", ""))
        if shortcode != self.shortcode:
            raise bad("BusinessShortCode")
        timestamp = str(body.get("Timestamp", ""))
        if not re.fullmatch(r"[0-9]{14}", timestamp):
            raise bad("Timestamp")
        password = base64.b64encode(f"{shortcode}{self.passkey}{timestamp}".encode()).decode()
        if body.get("Password") != password:
            raise Refused(500, "500.001.1001", "Wrong credentials")
        if body.get("TransactionType") not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
            raise bad("TransactionType")
        amount = _whole(body.get("Amount"))
        if amount is None or amount < 1:
            raise bad("Amount")
        phone = str(body.get("PhoneNumber", ""))
        if not _PHONE.fullmatch(phone):
            raise bad("PhoneNumber")
        if str(body.get("PartyA", "")) != phone:
            raise bad("PartyA")
        if str(body.get("PartyB", "")) != shortcode:
            raise bad("PartyB")
        if not _URL.fullmatch(str(body.get("CallBackURL", ""))):
            raise bad("CallBackURL")
        reference = body.get("AccountReference")
        if not isinstance(reference, str) or not 1 <= len(reference) <= 12:
            raise bad("AccountReference")
        description = body.get("TransactionDesc")
        if not isinstance(description, str) or not 1 <= len(description) <= 13:
            raise bad("TransactionDesc")
        with self._lock:
            n = next(self._ids)
            prompt = Prompt(
                checkout_request_id=f"ws_CO_{datetime.now(NAIROBI):%d%m%Y%H%M%S}{n:06d}",
                merchant_request_id=f"{self._random.randint(1000, 99999)}-{n}-1",
                phone=phone, amount=amount, account_reference=reference,
                description=description, shortcode=shortcode,
                callback_url=str(body["CallBackURL"]), created=_stamp())
            self.prompts[prompt.checkout_request_id] = prompt
        message = "Success. Request accepted for processing"
        return {"MerchantRequestID": prompt.merchant_request_id,
                "CheckoutRequestID": prompt.checkout_request_id,
                "ResponseCode": "0", "ResponseDescription": message, "CustomerMessage": message}

    def _pending(self, checkout_request_id: str) -> Prompt:
        prompt = self.prompts.get(checkout_request_id)
        if prompt is None:
            raise KeyError(f"no prompt {checkout_request_id}")
        if prompt.state != "pending":
            raise ValueError(f"prompt {checkout_request_id} already {prompt.state}")
        return prompt

    def _end_stk(self, prompt: Prompt, code: str, desc: str | None = None) -> Prompt:
        callback: dict[str, Any] = {
            "MerchantRequestID": prompt.merchant_request_id,
            "CheckoutRequestID": prompt.checkout_request_id,
            "ResultCode": int(code) if code.isdigit() else code,
            "ResultDesc": desc or STK_CODES.get(code, "The transaction failed."),
        }
        prompt.result_code = code
        if code == "0":
            prompt.state, prompt.receipt = "paid", self._receipt()
            callback["CallbackMetadata"] = {"Item": [
                {"Name": "Amount", "Value": prompt.amount},
                {"Name": "MpesaReceiptNumber", "Value": prompt.receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": int(_stamp())},
                {"Name": "PhoneNumber", "Value": int(prompt.phone)},
            ]}
        else:
            prompt.state = "cancelled" if code == "1032" else "failed"
        url = prompt.callback_url
        self._later(lambda: self._post("stk_callback", url, {"Body": {"stkCallback": callback}}))
        return prompt

    def _b2c(self, body: dict[str, Any]) -> dict[str, Any]:
        ocid = body.get("OriginatorConversationID")
        if not isinstance(ocid, str) or not 1 <= len(ocid) <= 100:
            raise bad("OriginatorConversationID")
        if body.get("CommandID") not in B2C_COMMANDS:
            raise bad("CommandID")
        amount = _whole(body.get("Amount"))
        if amount is None or amount < 1:
            raise bad("Amount")
        if str(body.get("PartyA", "")) != self.b2c_party:
            raise bad("PartyA")
        phone = str(body.get("PartyB", ""))
        if not _PHONE.fullmatch(phone):
            raise bad("PartyB")
        remarks = body.get("Remarks")
        if not isinstance(remarks, str) or not 2 <= len(remarks) <= 100:
            raise bad("Remarks")
        for key in ("ResultURL", "QueueTimeOutURL"):
            if not _URL.fullmatch(str(body.get(key, ""))):
                raise bad(key)
        with self._lock:
            if ocid in self.b2c_requests:
                raise Refused(500, "500.002.1001", "Duplicate OriginatorConversationID.")
            request = B2cRequest(
                originator_conversation_id=ocid, conversation_id=self._conversation_id(),
                phone=phone, amount=amount, command=str(body["CommandID"]), remarks=remarks,
                occasion=str(body.get("Occasion") or body.get("Occassion") or ""),
                result_url=str(body["ResultURL"]), timeout_url=str(body["QueueTimeOutURL"]),
                initiator_ok=(body.get("InitiatorName") == self.initiator_name
                              and body.get("SecurityCredential") == self.security_credential))
            self.b2c_requests[ocid] = request
        self._later(lambda: self._process_b2c(request))
        return {"ConversationID": request.conversation_id, "OriginatorConversationID": ocid,
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully."}

    def _process_b2c(self, request: B2cRequest) -> None:
        with self._lock:
            mode, notify = self.fail_by_ocid.get(
                request.originator_conversation_id,
                self.fail_by_phone.get(request.phone, (None, False)))
            if mode == "timeout":
                request.state = "timed_out"
                if not notify:
                    return
                code, desc = QUEUE_TIMEOUT
                result = self._result(request.originator_conversation_id,
                                      request.conversation_id, code, desc,
                                      transaction_id=self._transaction_id(), result_type=1)
                url, kind = request.timeout_url, "b2c_timeout"
            else:
                failure = self._b2c_failure(request, mode)
                transaction_id = request.transaction_id = self._receipt()
                request.completed = _stamp()
                if failure is None:
                    self.float_cents -= request.amount * 100
                    request.state, request.receipt = "completed", transaction_id
                    request.result_code, request.result_desc = "0", STK_CODES["0"]
                    self.payments.append(Payment(request.originator_conversation_id,
                                                 transaction_id, request.phone,
                                                 request.amount, request.completed))
                    if mode == "lost":
                        return
                    result = self._result(
                        request.originator_conversation_id, request.conversation_id, "0",
                        STK_CODES["0"], transaction_id=transaction_id,
                        parameters=self._b2c_parameters(request))
                else:
                    request.state = "failed"
                    request.result_code, request.result_desc = failure
                    result = self._result(request.originator_conversation_id,
                                          request.conversation_id, *failure,
                                          transaction_id=transaction_id)
                url, kind = request.result_url, "b2c_result"
        self._post(kind, url, result)

    def _b2c_failure(self, request: B2cRequest, mode: str | None) -> tuple[str, str] | None:
        if not request.initiator_ok:
            return B2C_FAILURES["initiator"]
        if mode in ("insufficient", "invalid", "unregistered"):
            return B2C_FAILURES[mode]
        if request.amount < B2C_MIN:
            return B2C_FAILURES["below_minimum"]
        if request.amount > B2C_MAX:
            return B2C_FAILURES["above_maximum"]
        if request.amount * 100 > self.float_cents:
            return B2C_FAILURES["insufficient"]
        return None

    def _b2c_parameters(self, request: B2cRequest) -> list[dict[str, Any]]:
        completed = datetime.strptime(request.completed, "%Y%m%d%H%M%S")
        return [
            {"Key": "TransactionAmount", "Value": request.amount},
            {"Key": "TransactionReceipt", "Value": request.receipt},
            {"Key": "ReceiverPartyPublicName", "Value": f"{request.phone} - FAKE CUSTOMER"},
            {"Key": "TransactionCompletedDateTime", "Value": f"{completed:%d.%m.%Y %H:%M:%S}"},
            {"Key": "B2CUtilityAccountAvailableFunds", "Value": _decimal(self.float_cents)},
            {"Key": "B2CWorkingAccountAvailableFunds", "Value": _decimal(self.working_cents)},
            {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
            {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": Decimal("0.00")},
        ]

    def _initiated(self, body: dict[str, Any], command: str) -> tuple[str, str, bool]:
        """Checks shared by Transaction Status and Account Balance."""
        if body.get("CommandID") != command:
            raise bad("CommandID")
        if str(body.get("PartyA", "")) not in (self.b2c_party, self.shortcode):
            raise bad("PartyA")
        if str(body.get("IdentifierType", "")) != "4":
            raise bad("IdentifierType")
        for key in ("ResultURL", "QueueTimeOutURL"):
            if not _URL.fullmatch(str(body.get(key, ""))):
                raise bad(key)
        initiator_ok = (body.get("Initiator") == self.initiator_name
                        and body.get("SecurityCredential") == self.security_credential)
        with self._lock:
            return self._request_id(), self._conversation_id(), initiator_ok

    def _status(self, body: dict[str, Any]) -> dict[str, Any]:
        transaction_id = str(body.get("TransactionID") or "").strip()
        ocid = str(body.get("OriginalConversationID") or "").strip()
        if not transaction_id and not ocid:
            raise bad("TransactionID")
        query_ocid, conversation_id, initiator_ok = self._initiated(body,
                                                                    "TransactionStatusQuery")
        result_url = str(body["ResultURL"])

        def answer() -> None:
            with self._lock:
                if not initiator_ok:
                    result = self._result(query_ocid, conversation_id,
                                          *B2C_FAILURES["initiator"])
                else:
                    result = self._status_result(query_ocid, conversation_id,
                                                 transaction_id, ocid)
            self._post("status_result", result_url, result)

        self._later(answer)
        return {"OriginatorConversationID": query_ocid, "ConversationID": conversation_id,
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully."}

    def _status_result(self, query_ocid: str, conversation_id: str, transaction_id: str,
                       ocid: str) -> dict[str, Any]:
        found = self.b2c_requests.get(ocid) if ocid else None
        if found is None and transaction_id:
            found = next((r for r in self.b2c_requests.values()
                          if r.transaction_id == transaction_id), None)
        if found is None or found.state in ("queued", "timed_out"):
            return self._result(query_ocid, conversation_id, *NOT_FOUND)
        status = "Completed" if found.state == "completed" else "Failed"
        parameters: list[dict[str, Any]] = [
            {"Key": "DebitPartyName", "Value": f"{self.b2c_party} - Harambee Fake"},
            {"Key": "CreditPartyName", "Value": f"{found.phone} - FAKE CUSTOMER"},
            {"Key": "OriginatorConversationID", "Value": found.originator_conversation_id},
            {"Key": "InitiatedTime", "Value": int(found.completed)},
            {"Key": "DebitAccountType", "Value": "Utility Account"},
            {"Key": "DebitPartyCharges"},
            {"Key": "TransactionReason"},
            {"Key": "ReasonType", "Value": "Business Payment to Customer via API"},
            {"Key": "TransactionStatus", "Value": status},
            {"Key": "FinalisedTime", "Value": int(found.completed)},
            {"Key": "Amount", "Value": found.amount},
            {"Key": "ConversationID", "Value": found.conversation_id},
            {"Key": "ReceiptNo", "Value": found.transaction_id},
        ]
        return self._result(query_ocid, conversation_id, "0", STK_CODES["0"],
                            transaction_id=found.transaction_id, parameters=parameters)

    def _balance(self, body: dict[str, Any]) -> dict[str, Any]:
        query_ocid, conversation_id, initiator_ok = self._initiated(body, "AccountBalance")
        result_url = str(body["ResultURL"])

        def answer() -> None:
            with self._lock:
                if not initiator_ok:
                    result = self._result(query_ocid, conversation_id,
                                          *B2C_FAILURES["initiator"])
                else:
                    utility, working = (_amount_text(self.float_cents),
                                        _amount_text(self.working_cents))
                    accounts = "&".join([
                        f"Working Account|KES|{working}|{working}|0.00|0.00",
                        "Float Account|KES|0.00|0.00|0.00|0.00",
                        f"Utility Account|KES|{utility}|{utility}|0.00|0.00",
                        "Charges Paid Account|KES|0.00|0.00|0.00|0.00",
                        "Organization Settlement Account|KES|0.00|0.00|0.00|0.00"])
                    result = self._result(
                        query_ocid, conversation_id, "0", STK_CODES["0"],
                        transaction_id=self._transaction_id(),
                        parameters=[{"Key": "AccountBalance", "Value": accounts},
                                    {"Key": "BOCompletedTime", "Value": int(_stamp())}])
            self._post("balance_result", result_url, result)

        self._later(answer)
        return {"OriginatorConversationID": query_ocid, "ConversationID": conversation_id,
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully."}

    # --- callbacks and ids -------------------------------------------------------------

    def _result(self, ocid: str, conversation_id: str, code: str, desc: str, *,
                transaction_id: str | None = None, parameters: list[dict[str, Any]] | None = None,
                result_type: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = {
            "ResultType": result_type, "ResultCode": int(code) if code.isdigit() else code,
            "ResultDesc": desc, "OriginatorConversationID": ocid,
            "ConversationID": conversation_id,
            "TransactionID": transaction_id or self._transaction_id()}
        if parameters:
            result["ResultParameters"] = {"ResultParameter": parameters}
        result["ReferenceData"] = {"ReferenceItem": {"Key": "QueueTimeoutURL",
                                                     "Value": "https://fake.invalid/timeout"}}
        return {"Result": result}

    def _post(self, kind: str, url: str, body: dict[str, Any]) -> Delivery:
        with self._lock:
            delivery = Delivery(len(self.deliveries) + 1, kind, url, body)
            self.deliveries.append(delivery)
        request = urllib.request.Request(url, data=_dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.callback_timeout) as answer:
                delivery.status = answer.status
                delivery.answer = answer.read(4000).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            delivery.status = exc.code
            delivery.answer = exc.read(4000).decode("utf-8", "replace")
        except (OSError, ValueError) as exc:  # refused, timed out, a bad URL
            delivery.error = f"{type(exc).__name__}: {exc}"[:300]
        delivery.ms = round((time.perf_counter() - started) * 1000, 1)
        return delivery

    def _receipt(self) -> str:
        """A fresh M-Pesa-like receipt: ten capitals and digits, starting with a letter."""
        with self._lock:
            while True:
                receipt = self._random.choice(string.ascii_uppercase) + "".join(
                    self._random.choices(string.ascii_uppercase + string.digits, k=9))
                if receipt not in self._receipts:
                    self._receipts.add(receipt)
                    return receipt

    def _transaction_id(self) -> str:
        return self._random.choice(string.ascii_uppercase) + "".join(
            self._random.choices(string.ascii_uppercase, k=2)) + "0000000"

    def _conversation_id(self) -> str:
        return f"AG_{datetime.now(NAIROBI):%Y%m%d}_" + "".join(
            self._random.choices("0123456789abcdef", k=20))

    def _request_id(self) -> str:
        return f"{self._random.randint(1000, 99999)}-{next(self._ids)}-1"


# --- values ----------------------------------------------------------------------------


def _msisdn(phone: str) -> str:
    """`+254712...`, `254712...` or `0712...` as Daraja's `254712...`."""
    digits = re.sub(r"[\s-]", "", str(phone)).lstrip("+")
    if digits.startswith("0"):
        digits = "254" + digits[1:]
    if not _PHONE.fullmatch(digits):
        raise ValueError(f"not a Kenyan mobile number: {phone!r}")
    return digits


def _whole(value: Any) -> int | None:
    """A whole number sent as a JSON number or digits, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        return int(value)
    return None


def _cents(shillings: Decimal | int | str) -> int:
    try:
        value = Decimal(str(shillings))
    except InvalidOperation:
        raise ValueError(f"not an amount: {shillings!r}") from None
    cents = value * 100
    if not value.is_finite() or cents != cents.to_integral_value() or value < 0:
        raise ValueError(f"not an amount in shillings and cents: {shillings!r}")
    return int(cents)


def _amount_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def _decimal(cents: int) -> Decimal:
    return Decimal(_amount_text(cents))


def _stamp() -> str:
    return f"{datetime.now(UTC).astimezone(NAIROBI):%Y%m%d%H%M%S}"


def _validation_code(delivery: Delivery) -> str | None:
    """The ResultCode our validation URL answered, or None when it did not answer one."""
    if delivery.status != 200:
        return None
    try:
        answer = json.loads(delivery.answer)
    except ValueError:
        return None
    code = answer.get("ResultCode") if isinstance(answer, dict) else None
    if code is None or isinstance(code, bool):
        return None
    text = str(code).strip()
    return "0" if text.strip("0") == "" and text else text


def _dumps(value: Any) -> str:
    """JSON like Daraja's: Decimals written as numbers with their digits (8959269.60)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_dumps(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_dumps(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpesa.fake",
                                     description="A fake of Safaricom's Daraja API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--consumer-key", default=FakeDaraja.consumer_key)
    parser.add_argument("--consumer-secret", default=FakeDaraja.consumer_secret)
    parser.add_argument("--shortcode", default=FakeDaraja.shortcode)
    parser.add_argument("--passkey", default=FakeDaraja.passkey)
    parser.add_argument("--b2c-shortcode", default=FakeDaraja.b2c_shortcode)
    parser.add_argument("--initiator-name", default=FakeDaraja.initiator_name)
    parser.add_argument("--security-credential", default=FakeDaraja.security_credential)
    parser.add_argument("--float", default="1000000", help="B2C float, shillings")
    args = parser.parse_args(argv)
    fake = FakeDaraja(consumer_key=args.consumer_key, consumer_secret=args.consumer_secret,
                      shortcode=args.shortcode, passkey=args.passkey,
                      b2c_shortcode=args.b2c_shortcode, initiator_name=args.initiator_name,
                      security_credential=args.security_credential,
                      float_cents=_cents(args.float), host=args.host, port=args.port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    fake.start()
    print(f"Fake Daraja on {fake.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        fake.stop()
    print("Fake Daraja stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

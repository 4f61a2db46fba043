"""The Daraja (M-Pesa) HTTP client: a thin layer on `requests` (docs/mpesa.md says why).

`Daraja(settings.mpesa, minor_scale=settings.app.minor_scale)` is made once per process
and shared by its threads. Each method is one Daraja request and returns what Daraja
said when it accepted it; what happened to the money arrives later at the callback URLs
(`mpesa.callbacks` reads those bodies).

- Amounts are our minor units (`int`); Daraja takes whole shillings, so an amount with
  cents, zero, negative or above `mpesa.max_amount` is refused with ValueError before
  anything is sent. Phones are E.164 Kenyan numbers (`+2547...`), sent as `2547...`.
- The OAuth token is cached until a minute before Daraja says it expires, fetched by
  one thread at a time; a request Daraja refuses for its token is sent once more with a
  fresh token (the gateway refused it before M-Pesa saw it).
- Every request has the configured timeout. Nothing else is retried here: whether to
  send money again is the caller's decision (B2C is safe to resend with the same
  OriginatorConversationID: Daraja refuses a duplicate).
- Every failure is one `DarajaError`: `transient` (connection errors, timeouts, 5xx,
  429: worth trying again later) or permanent (4xx, refusals: never retry as is), with
  Daraja's `code` when it gave one, `outcome_unknown` when the request may have reached
  M-Pesa anyway (a read timeout, a dropped connection, a 5xx, a garbled 2xx), and `duplicate`
  when Daraja refused a B2C because its OriginatorConversationID was already used.
- Logs never carry secrets (consumer secret, passkey, security credential, tokens,
  passwords) nor full phone numbers at info level.
"""
from __future__ import annotations

import base64
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests
from urllib3.exceptions import NewConnectionError

from core.config import B2C_COMMANDS, DARAJA_FORBIDDEN_URL_WORDS, MpesaSettings
from core.phones import masked

log = logging.getLogger(__name__)

NAIROBI = ZoneInfo("Africa/Nairobi")
TOKEN_MARGIN_SECONDS = 60  # refresh this long before Daraja says the token expires
_KENYAN_E164 = re.compile(r"\+254[17][0-9]{8}")
_OCID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
_URL = re.compile(r"https?://[^\s/?#]+(/[^\s]*)?")
_INVALID_TOKEN = re.compile(r"invalid access token", re.I)
_DUPLICATE = re.compile(r"duplicate", re.I)


class DarajaError(Exception):
    """Daraja did not accept a request.

    `transient`: worth trying again later (connection error, timeout, 5xx, 429).
    `code`: Daraja's errorCode (`400.002.02`) or ResponseCode, when it gave one.
    `status`: the HTTP status, when there was an answer.
    `outcome_unknown`: the request may have reached M-Pesa all the same (a read
    timeout, a dropped connection, a 5xx, a garbled 2xx); find out (a callback, Transaction
    Status, or the same B2C again) before treating the money as not moved.
    `duplicate`: a B2C refused because its OriginatorConversationID was used before.
    """

    def __init__(self, detail: str, *, transient: bool, code: str | None = None,
                 status: int | None = None, outcome_unknown: bool = False,
                 duplicate: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.transient = transient
        self.code = code
        self.status = status
        self.outcome_unknown = outcome_unknown
        self.duplicate = duplicate

    def __repr__(self) -> str:
        return (f"DarajaError({self.detail!r}, transient={self.transient}, code={self.code!r}, "
                f"status={self.status}, outcome_unknown={self.outcome_unknown}, "
                f"duplicate={self.duplicate})")


@dataclass(frozen=True)
class StkAccepted:
    """Daraja sent the prompt; the outcome comes to the callback URL."""

    merchant_request_id: str
    checkout_request_id: str
    customer_message: str


@dataclass(frozen=True)
class Accepted:
    """Daraja queued the request; the result comes to the result (or timeout) URL."""

    conversation_id: str
    originator_conversation_id: str
    description: str


@dataclass
class _Token:
    value: str
    refresh_at: float  # on the client's monotonic clock


class Daraja:
    """One Daraja app's credentials and short codes (`mpesa` settings)."""

    def __init__(self, settings: MpesaSettings, *, minor_scale: int = 100,
                 session: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if minor_scale < 1 or 10 ** (len(str(minor_scale)) - 1) != minor_scale:
            raise ValueError(f"minor_scale must be a power of ten, not {minor_scale}")
        self.settings = settings
        self.minor_scale = minor_scale
        self._base = settings.base_url.rstrip("/")
        self._session = session or requests.Session()
        self._timeout = (settings.timeout_seconds, settings.timeout_seconds)
        self._clock = clock
        self._now = now
        self._token: _Token | None = None
        self._token_lock = threading.Lock()

    # --- the API ---------------------------------------------------------------------

    def register_urls(self, *, confirmation_url: str, validation_url: str,
                      response_type: str = "Completed") -> str:
        """Register our C2B URLs for the paybill; returns Daraja's description.

        `response_type` is what M-Pesa does when our validation URL cannot be reached:
        Completed (take the payment) or Cancelled (refuse it).
        """
        if response_type not in ("Completed", "Cancelled"):
            raise ValueError("response_type must be Completed or Cancelled")
        for url in (confirmation_url, validation_url):
            _check_url(url, c2b=True)
        answer = self._post("/mpesa/c2b/v1/registerurl", {
            "ShortCode": self.settings.shortcode,
            "ResponseType": response_type,
            "ConfirmationURL": confirmation_url,
            "ValidationURL": validation_url,
        }, what="register URLs")
        self._require_code(answer, "register URLs")
        log.info("Daraja: C2B URLs registered for %s", self.settings.shortcode)
        return str(answer.get("ResponseDescription", ""))

    def stk_push(self, *, phone: str, amount: int, account_reference: str, description: str,
                 callback_url: str) -> StkAccepted:
        """Ask `phone` to pay `amount` (minor units) to our paybill by an M-Pesa prompt.

        Not idempotent: sending it again sends another prompt.
        """
        shillings = self._shillings(amount)
        msisdn = _msisdn(phone)
        if not 1 <= len(account_reference) <= 12:
            raise ValueError("account_reference must be 1 to 12 characters")
        if not 1 <= len(description) <= 13:
            raise ValueError("description must be 1 to 13 characters")
        _check_url(callback_url)
        if not self.settings.passkey:
            raise ValueError("mpesa.passkey is not set")
        shortcode = self.settings.shortcode
        timestamp = self._now().astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")
        password = base64.b64encode(
            f"{shortcode}{self.settings.passkey}{timestamp}".encode()).decode()
        answer = self._post("/mpesa/stkpush/v1/processrequest", {
            "BusinessShortCode": shortcode,
            "Password": password,
            "Timestamp": timestamp,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": shillings,
            "PartyA": msisdn,
            "PartyB": shortcode,
            "PhoneNumber": msisdn,
            "CallBackURL": callback_url,
            "AccountReference": account_reference,
            "TransactionDesc": description,
        }, what="STK push")
        self._require_code(answer, "STK push")
        accepted = StkAccepted(
            merchant_request_id=_field(answer, "MerchantRequestID", "STK push"),
            checkout_request_id=_field(answer, "CheckoutRequestID", "STK push"),
            customer_message=str(answer.get("CustomerMessage", "")))
        log.info("Daraja: STK push of %s to %s sent (%s)", shillings, masked(phone),
                 accepted.checkout_request_id)
        return accepted

    def b2c(self, *, originator_conversation_id: str, phone: str, amount: int, remarks: str,
            result_url: str, timeout_url: str, command: str | None = None,
            occasion: str = "") -> Accepted:
        """Send `amount` (minor units) to `phone` from the B2C short code.

        `originator_conversation_id` is ours and must be unique per payment: Daraja
        refuses it a second time (`DarajaError.duplicate`), so resending the same
        payment after a timeout can never pay twice.
        """
        shillings = self._shillings(amount)
        msisdn = _msisdn(phone)
        if not _OCID.fullmatch(originator_conversation_id):
            raise ValueError("originator_conversation_id must be 1 to 100 letters, digits, "
                             "'_', '-', '.' or ':'")
        command = command or self.settings.b2c_command
        if command not in B2C_COMMANDS:
            raise ValueError(f"command must be one of {', '.join(B2C_COMMANDS)}")
        if not 2 <= len(remarks) <= 100:
            raise ValueError("remarks must be 2 to 100 characters")
        if len(occasion) > 100:
            raise ValueError("occasion must be at most 100 characters")
        _check_url(result_url)
        _check_url(timeout_url)
        answer = self._post("/mpesa/b2c/v3/paymentrequest", {
            "OriginatorConversationID": originator_conversation_id,
            "InitiatorName": self._initiator(),
            "SecurityCredential": self._credential(),
            "CommandID": command,
            "Amount": shillings,
            "PartyA": self.settings.b2c_party,
            "PartyB": msisdn,
            "Remarks": remarks,
            "QueueTimeOutURL": timeout_url,
            "ResultURL": result_url,
            "Occasion": occasion,
        }, what="B2C", b2c=True)
        accepted = self._accepted(answer, "B2C")
        log.info("Daraja: B2C %s of %s to %s accepted (%s)", originator_conversation_id,
                 shillings, masked(phone), accepted.conversation_id)
        return accepted

    def transaction_status(self, *, result_url: str, timeout_url: str,
                           transaction_id: str | None = None,
                           originator_conversation_id: str | None = None) -> Accepted:
        """Ask what became of a transaction, by M-Pesa receipt or by our
        OriginatorConversationID; the answer comes to `result_url`."""
        if not transaction_id and not originator_conversation_id:
            raise ValueError("give transaction_id or originator_conversation_id")
        for value in (transaction_id, originator_conversation_id):
            if value and not _OCID.fullmatch(value):
                raise ValueError("not a transaction or conversation id")
        _check_url(result_url)
        _check_url(timeout_url)
        body: dict[str, Any] = {
            "Initiator": self._initiator(),
            "SecurityCredential": self._credential(),
            "CommandID": "TransactionStatusQuery",
            "PartyA": self.settings.b2c_party,
            "IdentifierType": "4",
            "ResultURL": result_url,
            "QueueTimeOutURL": timeout_url,
            "Remarks": "Status check",
            "Occasion": "",
        }
        if transaction_id:
            body["TransactionID"] = transaction_id
        if originator_conversation_id:
            body["OriginalConversationID"] = originator_conversation_id
        answer = self._post("/mpesa/transactionstatus/v1/query", body,
                            what="transaction status")
        accepted = self._accepted(answer, "transaction status")
        log.info("Daraja: status of %s asked (%s)", transaction_id or originator_conversation_id,
                 accepted.conversation_id)
        return accepted

    def account_balance(self, *, result_url: str, timeout_url: str) -> Accepted:
        """Ask for the B2C short code's balances; the answer comes to `result_url`."""
        _check_url(result_url)
        _check_url(timeout_url)
        answer = self._post("/mpesa/accountbalance/v1/query", {
            "Initiator": self._initiator(),
            "SecurityCredential": self._credential(),
            "CommandID": "AccountBalance",
            "PartyA": self.settings.b2c_party,
            "IdentifierType": "4",
            "Remarks": "Balance check",
            "ResultURL": result_url,
            "QueueTimeOutURL": timeout_url,
        }, what="account balance")
        accepted = self._accepted(answer, "account balance")
        log.info("Daraja: balance asked (%s)", accepted.conversation_id)
        return accepted

    # --- the token -------------------------------------------------------------------

    def token(self) -> str:
        """A valid OAuth token: the cached one, or a new one (one thread fetches)."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        with self._token_lock:
            token = self._token
            if token is not None and self._clock() < token.refresh_at:
                return token.value
            self._token = self._fetch_token()
            return self._token.value

    def forget_token(self, stale: str | None = None) -> None:
        """Drop the cached token (only if it is still `stale`, when given)."""
        with self._token_lock:
            if self._token is not None and (stale is None or self._token.value == stale):
                self._token = None

    def _fetch_token(self) -> _Token:
        if not self.settings.consumer_key or not self.settings.consumer_secret:
            raise DarajaError("mpesa.consumer_key and consumer_secret are not set",
                              transient=False)
        started = self._clock()
        response = self._send("GET", "/oauth/v1/generate", what="OAuth", params={
            "grant_type": "client_credentials"},
            auth=(self.settings.consumer_key, self.settings.consumer_secret))
        if response.status_code != 200:
            raise _http_error(response, "OAuth", b2c=False)
        answer = _json(response, "OAuth")
        value = answer.get("access_token")
        try:
            lifetime = int(str(answer.get("expires_in", "3599")))
        except ValueError:
            lifetime = 0
        if not isinstance(value, str) or not value or lifetime <= 0:
            raise DarajaError("OAuth: no token in Daraja's answer", transient=True,
                              status=response.status_code)
        keep = max(lifetime - TOKEN_MARGIN_SECONDS, lifetime / 2)
        log.info("Daraja: new OAuth token, kept %.0f s", keep)
        return _Token(value, started + keep)

    # --- the requests ----------------------------------------------------------------

    def _post(self, path: str, body: Mapping[str, Any], *, what: str,
              b2c: bool = False) -> dict[str, Any]:
        """POST with the token; once more with a new token if Daraja refused the token."""
        for attempt in (1, 2):
            token = self.token()
            response = self._send("POST", path, what=what, json=body,
                                  headers={"Authorization": f"Bearer {token}"})
            if attempt == 1 and _token_refused(response):
                log.info("Daraja: %s refused the token; fetching a new one", what)
                self.forget_token(token)
                continue
            if not 200 <= response.status_code < 300:
                raise _http_error(response, what, b2c=b2c)
            return _json(response, what)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, path: str, *, what: str, **kwargs: Any) -> requests.Response:
        try:
            return self._session.request(method, self._base + path, timeout=self._timeout,
                                         **kwargs)
        except requests.ConnectTimeout:
            raise DarajaError(f"{what}: connect timeout", transient=True) from None
        except requests.Timeout:
            raise DarajaError(f"{what}: no answer within {self.settings.timeout_seconds} s",
                              transient=True, outcome_unknown=True) from None
        except requests.ConnectionError as exc:
            reason = getattr(exc.args[0] if exc.args else None, "reason", None)
            unsent = isinstance(reason, NewConnectionError)  # refused, no route, DNS
            raise DarajaError(f"{what}: connection failed ({type(exc).__name__})",
                              transient=True, outcome_unknown=not unsent) from None
        except requests.RequestException as exc:
            raise DarajaError(f"{what}: request failed ({type(exc).__name__})",
                              transient=False) from None

    def _require_code(self, answer: Mapping[str, Any], what: str) -> None:
        code = str(answer.get("ResponseCode", "")).strip()
        if code.strip("0") != "" or code == "":
            detail = str(answer.get("ResponseDescription") or answer.get("errorMessage") or "")
            raise DarajaError(f"{what} refused: {detail[:200]}", transient=False,
                              code=code or None, status=200)

    def _accepted(self, answer: Mapping[str, Any], what: str) -> Accepted:
        self._require_code(answer, what)
        return Accepted(
            conversation_id=_field(answer, "ConversationID", what),
            originator_conversation_id=_field(answer, "OriginatorConversationID", what),
            description=str(answer.get("ResponseDescription", "")))

    # --- the values ------------------------------------------------------------------

    def _shillings(self, amount: int) -> int:
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise ValueError("amount must be an int of minor units")
        if amount <= 0:
            raise ValueError("amount must be positive")
        whole, cents = divmod(amount, self.minor_scale)
        if cents:
            raise ValueError("M-Pesa moves whole shillings: the amount has cents")
        if whole > self.settings.max_amount:
            raise ValueError(f"amount is above mpesa.max_amount ({self.settings.max_amount})")
        return whole

    def _initiator(self) -> str:
        if not self.settings.initiator_name:
            raise ValueError("mpesa.initiator_name is not set")
        return self.settings.initiator_name

    def _credential(self) -> str:
        if not self.settings.security_credential:
            raise ValueError("mpesa.security_credential is not set")
        return self.settings.security_credential


def _msisdn(phone: str) -> str:
    """`+254712345678` -> `254712345678`; anything but a Kenyan mobile number is refused."""
    if not isinstance(phone, str) or not _KENYAN_E164.fullmatch(phone):
        raise ValueError("phone must be a Kenyan mobile number in E.164 (+2547... or +2541...)")
    return phone[1:]


def _check_url(url: str, *, c2b: bool = False) -> None:
    if not isinstance(url, str) or not _URL.fullmatch(url):
        raise ValueError("callback URLs must be http(s) URLs")
    if c2b:
        lowered = url.lower()
        for word in DARAJA_FORBIDDEN_URL_WORDS:
            if word in lowered:
                raise ValueError(f"Daraja refuses C2B URLs containing {word!r}")


def _field(answer: Mapping[str, Any], key: str, what: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise DarajaError(f"{what}: Daraja's answer has no {key}", transient=True,
                          status=200, outcome_unknown=True)
    return str(value)


def _json(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise DarajaError(f"{what}: Daraja's answer is not a JSON object", transient=True,
                          status=response.status_code, outcome_unknown=True)
    return answer


def _token_refused(response: requests.Response) -> bool:
    if response.status_code == 401:
        return True
    if response.status_code in (400, 403, 404):
        return bool(_INVALID_TOKEN.search(response.text[:500]))
    return False


def _http_error(response: requests.Response, what: str, *, b2c: bool) -> DarajaError:
    """Daraja's non-2xx answer (`{"requestId", "errorCode", "errorMessage"}`) as an error."""
    status = response.status_code
    try:
        answer = response.json()
    except ValueError:
        answer = None
    code = message = None
    if isinstance(answer, dict):
        code = str(answer.get("errorCode") or answer.get("ResponseCode") or "") or None
        message = str(answer.get("errorMessage") or answer.get("ResponseDescription") or "")
    detail = f"{what}: HTTP {status}" + (f" {code}" if code else "") + (
        f" {message[:200]}" if message else "")
    duplicate = b2c and bool(message and _DUPLICATE.search(message))
    transient = (status >= 500 or status == 429) and not duplicate
    return DarajaError(detail, transient=transient, code=code, status=status,
                       outcome_unknown=status >= 500 and not duplicate, duplicate=duplicate)

"""Daraja's callback bodies as typed values.

Pure functions, no I/O: each takes a body (the raw bytes of the request, best, or an
already-decoded mapping) and returns a frozen value, or raises `CallbackInvalid(reason)`
for a body that can never be valid. They raise nothing else, whatever the body.

- `parse_c2b`: a C2B validation or confirmation (a customer paid our paybill).
- `parse_stk_callback`: the outcome of an STK push (`Body.stkCallback`).
- `parse_result`: the `Result` posted to a ResultURL or QueueTimeOutURL, for B2C
  payments, Transaction Status and Account Balance; helpers below read a B2C receipt and
  amount and the account balances out of its parameters.

Money is read exactly, never through a float: pass the raw body (`request.get_data()`),
which `load_json` decodes with fractions as `Decimal`. A mapping decoded elsewhere with
binary floats in it is refused, since `1199371.10` may already have been rounded.
Amounts become minor units of `scale` (100 for KES). Daraja's times are Nairobi wall
clock (`YYYYMMDDHHmmss`); they become aware UTC datetimes and must fall between
2020-01-01 and a day after `now`.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

__all__ = [
    "ACK", "C2B_INVALID_ACCOUNT", "C2B_INVALID_AMOUNT", "C2B_INVALID_KYC", "C2B_INVALID_MSISDN",
    "C2B_INVALID_SHORTCODE", "C2B_OTHER", "MAX_BODY_BYTES", "AccountBalance", "C2bPayment",
    "CallbackInvalid", "DarajaResult", "StkResult", "account_balances", "b2c_amount",
    "b2c_completed_at", "b2c_receipt", "c2b_answer", "load_json", "parse_c2b", "parse_result",
    "parse_stk_callback", "utility_account_balance", "working_account_balance",
]

MAX_BODY_BYTES = 64 * 1024  # a Daraja body is a few hundred bytes; a B2C result under 4 KB
INT64_MAX = 2**63 - 1  # our counters are BigInteger
EARLIEST = datetime(2020, 1, 1, tzinfo=UTC)
_MAX_TEXT = 256  # names, descriptions, references
_MAX_ID = 64  # receipts, conversation and request ids

# The answers a C2B validation URL may give (Safaricom's C2B documentation).
C2B_INVALID_MSISDN = "C2B00011"
C2B_INVALID_ACCOUNT = "C2B00012"
C2B_INVALID_AMOUNT = "C2B00013"
C2B_INVALID_KYC = "C2B00014"
C2B_INVALID_SHORTCODE = "C2B00015"
C2B_OTHER = "C2B00016"
_C2B_REJECTIONS = {C2B_INVALID_MSISDN, C2B_INVALID_ACCOUNT, C2B_INVALID_AMOUNT, C2B_INVALID_KYC,
                   C2B_INVALID_SHORTCODE, C2B_OTHER}

# What a ResultURL, QueueTimeOutURL, STK callback or C2B confirmation answers Daraja.
ACK: dict[str, Any] = {"ResultCode": 0, "ResultDesc": "Accepted"}

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_DIGITS = re.compile(r"[0-9]+")
_STAMP = re.compile(r"[0-9]{14}")
_KENYAN_MSISDN = re.compile(r"254[17][0-9]{8}")


class CallbackInvalid(ValueError):
    """A body that can never be valid; `reason` says why (safe to log: no values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def c2b_answer(reject: str | None = None) -> dict[str, str]:
    """The validation URL's answer: accept, or reject with one of the C2B000xx codes."""
    if reject is None:
        return {"ResultCode": "0", "ResultDesc": "Accepted"}
    if reject not in _C2B_REJECTIONS:
        raise ValueError(f"not a C2B rejection code: {reject!r}")
    return {"ResultCode": reject, "ResultDesc": "Rejected"}


def load_json(raw: bytes | bytearray | str) -> Any:
    """Decode a callback body: fractions become Decimal, NaN and Infinity are refused,
    and so are bodies over MAX_BODY_BYTES, NUL characters and anything not JSON."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if not isinstance(raw, bytes | bytearray):
        raise CallbackInvalid("body is not bytes or text")
    if len(raw) > MAX_BODY_BYTES:
        raise CallbackInvalid("body too large")
    try:
        text = bytes(raw).decode("utf-8")
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise CallbackInvalid("body is not JSON") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


# --- C2B -------------------------------------------------------------------------------


@dataclass(frozen=True)
class C2bPayment:
    """A customer's payment to our paybill, as Daraja validates or confirms it."""

    trans_id: str  # M-Pesa's receipt: the idempotency key
    trans_time: datetime  # aware, UTC
    amount: int  # minor units
    bill_ref: str  # what the customer typed as the account number (stripped)
    msisdn: str  # as Daraja sent it: full, masked (2547****149) or hashed
    payer_name: str  # first, middle and last names joined; may be empty
    shortcode: str
    transaction_type: str  # e.g. "Pay Bill"; may be empty
    invoice_number: str = ""
    third_party_trans_id: str = ""

    @property
    def phone(self) -> str | None:
        """E.164 when Daraja sent the full number, None when it is masked or hashed."""
        return _e164(self.msisdn)


def parse_c2b(body: Any, *, scale: int, zone: tzinfo, now: datetime,
              max_minor: int | None = None) -> C2bPayment:
    """A C2B validation or confirmation body (both have the same fields)."""
    data = _object(body)
    names = [_text(data, key, optional=True) for key in ("FirstName", "MiddleName", "LastName")]
    return C2bPayment(
        trans_id=_ident(data, "TransID"),
        trans_time=_stamp(data.get("TransTime"), "TransTime", zone=zone, now=now),
        amount=_minor(data.get("TransAmount"), "TransAmount", scale=scale, max_minor=max_minor),
        bill_ref=_text(data, "BillRefNumber", optional=True).strip(),
        msisdn=_msisdn(data, "MSISDN"),
        payer_name=" ".join(n.strip() for n in names if n.strip()),
        shortcode=_digits(data, "BusinessShortCode"),
        transaction_type=_text(data, "TransactionType", optional=True),
        invoice_number=_text(data, "InvoiceNumber", optional=True),
        third_party_trans_id=_text(data, "ThirdPartyTransID", optional=True),
    )


# --- STK push --------------------------------------------------------------------------

STK_PAID = "0"
STK_CANCELLED = "1032"


@dataclass(frozen=True)
class StkResult:
    """How an STK push ended: paid (result_code "0") or not, and the payment if paid."""

    merchant_request_id: str
    checkout_request_id: str  # the key: Daraja's answer to stk_push gave it
    result_code: str  # "0" paid, "1032" cancelled, "1037" unreachable, "2001" wrong PIN...
    result_desc: str
    amount: int | None = None  # minor units; set when paid
    receipt: str | None = None  # MpesaReceiptNumber; set when paid
    paid_at: datetime | None = None  # aware UTC; set when paid
    phone: str | None = None  # E.164 when Daraja sent the full number
    msisdn: str = ""  # the number as Daraja sent it (possibly masked)

    @property
    def paid(self) -> bool:
        return self.result_code == STK_PAID

    @property
    def cancelled(self) -> bool:
        return self.result_code == STK_CANCELLED


def parse_stk_callback(body: Any, *, scale: int, zone: tzinfo, now: datetime,
                       max_minor: int | None = None) -> StkResult:
    """The body Daraja posts to an STK push's CallBackURL."""
    outer = _object(body)
    inner = _object(outer.get("Body"), "Body")
    cb = _object(inner.get("stkCallback"), "Body.stkCallback")
    merchant = _ident(cb, "MerchantRequestID")
    checkout = _ident(cb, "CheckoutRequestID")
    code = _code(cb, "ResultCode")
    desc = _text(cb, "ResultDesc", optional=True)
    if code != STK_PAID:
        return StkResult(merchant, checkout, code, desc)
    meta = _object(cb.get("CallbackMetadata"), "CallbackMetadata")
    items = _pairs(meta.get("Item"), "CallbackMetadata.Item", name="Name")
    msisdn = _scalar_text(items.get("PhoneNumber"), "PhoneNumber", required=True)
    if not _msisdn_ok(msisdn):
        raise CallbackInvalid("PhoneNumber is not a phone number")
    return StkResult(
        merchant, checkout, code, desc,
        amount=_minor(items.get("Amount"), "Amount", scale=scale, max_minor=max_minor),
        receipt=_receipt(items.get("MpesaReceiptNumber"), "MpesaReceiptNumber"),
        paid_at=_stamp(items.get("TransactionDate"), "TransactionDate", zone=zone, now=now),
        phone=_e164(msisdn), msisdn=msisdn)


# --- Results: B2C, timeouts, Transaction Status, Account Balance -----------------------


@dataclass(frozen=True)
class DarajaResult:
    """A `Result` posted to a ResultURL or QueueTimeOutURL.

    `parameters` holds ResultParameters as text exactly as sent (`"1199371.00"`): for a
    B2C payment TransactionAmount, TransactionReceipt, ReceiverPartyPublicName,
    TransactionCompletedDateTime, B2CUtilityAccountAvailableFunds,
    B2CWorkingAccountAvailableFunds, B2CRecipientIsRegisteredCustomer; for a
    Transaction Status TransactionStatus, ReceiptNo, Amount, FinalisedTime,
    OriginatorConversationID...; for an Account Balance AccountBalance, BOCompletedTime.
    A key sent twice keeps its first value. `reference` holds ReferenceData the same way.
    Which query a result answers, and whether it is a timeout, is told by the URL it
    arrived at, not by the body.
    """

    result_type: int
    result_code: str
    result_desc: str
    originator_conversation_id: str
    conversation_id: str
    transaction_id: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    reference: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.result_code == "0"


def parse_result(body: Any) -> DarajaResult:
    """A ResultURL or QueueTimeOutURL body (`{"Result": {...}}`)."""
    outer = _object(body)
    r = _object(outer.get("Result"), "Result")
    result_type = r.get("ResultType", 0)
    if isinstance(result_type, str) and _DIGITS.fullmatch(result_type) and len(result_type) < 4:
        result_type = int(result_type)
    if not isinstance(result_type, int) or isinstance(result_type, bool) or not (
            0 <= result_type <= 9):
        raise CallbackInvalid("ResultType is not a small number")
    parameters: dict[str, str] = {}
    if r.get("ResultParameters") is not None:
        holder = _object(r.get("ResultParameters"), "ResultParameters")
        parameters = _pairs(holder.get("ResultParameter"), "ResultParameter", name="Key")
    reference: dict[str, str] = {}
    if r.get("ReferenceData") is not None:
        holder = _object(r.get("ReferenceData"), "ReferenceData")
        reference = _pairs(holder.get("ReferenceItem"), "ReferenceItem", name="Key")
    transaction_id = ""
    if r.get("TransactionID") not in (None, ""):
        transaction_id = _ident(r, "TransactionID")
    return DarajaResult(
        result_type=result_type,
        result_code=_code(r, "ResultCode"),
        result_desc=_text(r, "ResultDesc", optional=True),
        originator_conversation_id=_ident(r, "OriginatorConversationID"),
        conversation_id=_ident(r, "ConversationID"),
        transaction_id=transaction_id,
        parameters=parameters,
        reference=reference,
    )


def b2c_receipt(result: DarajaResult) -> str | None:
    """The M-Pesa receipt of a completed B2C payment (TransactionReceipt), or None."""
    if not result.succeeded or "TransactionReceipt" not in result.parameters:
        return None
    return _receipt(result.parameters["TransactionReceipt"], "TransactionReceipt")


def b2c_amount(result: DarajaResult, *, scale: int, max_minor: int | None = None) -> int | None:
    """The amount a completed B2C payment sent (TransactionAmount), in minor units."""
    if not result.succeeded or "TransactionAmount" not in result.parameters:
        return None
    return _minor(result.parameters["TransactionAmount"], "TransactionAmount", scale=scale,
                  max_minor=max_minor)


def b2c_completed_at(result: DarajaResult, *, zone: tzinfo, now: datetime) -> datetime | None:
    """TransactionCompletedDateTime (`06.07.2024 22:48:52`, Nairobi) as aware UTC."""
    text = result.parameters.get("TransactionCompletedDateTime")
    if not result.succeeded or not text:
        return None
    match = re.fullmatch(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2})",
                         text)
    if match is None:
        raise CallbackInvalid("TransactionCompletedDateTime is not dd.mm.yyyy hh:mm:ss")
    d, mo, y, h, mi, s = match.groups()
    return _checked_time(y + mo + d + h + mi + s, "TransactionCompletedDateTime", zone, now)


@dataclass(frozen=True)
class AccountBalance:
    """One account of an Account Balance result, in minor units (may be negative)."""

    name: str
    currency: str
    current: int
    available: int
    reserved: int
    uncleared: int


def account_balances(result: DarajaResult, *, scale: int) -> dict[str, AccountBalance]:
    """The accounts of an Account Balance result, by name ("Working Account", "Utility
    Account", "Charges Paid Account"...). Daraja sends them as one text,
    `name|currency|current|available|reserved|uncleared` joined by `&`."""
    text = result.parameters.get("AccountBalance")
    if not result.succeeded or not text:
        return {}
    accounts: dict[str, AccountBalance] = {}
    for chunk in text.split("&")[:32]:
        parts = chunk.split("|")
        if len(parts) != 6:
            raise CallbackInvalid("AccountBalance is not name|currency|4 amounts")
        name, currency = parts[0].strip(), parts[1].strip()
        if not name or len(name) > _MAX_TEXT or not re.fullmatch(r"[A-Z]{3}", currency):
            raise CallbackInvalid("AccountBalance has a bad account name or currency")
        amounts = [_minor(p.strip(), "AccountBalance", scale=scale, max_minor=None, signed=True)
                   for p in parts[2:]]
        accounts.setdefault(name, AccountBalance(name, currency, *amounts))
    return accounts


def working_account_balance(result: DarajaResult, *, scale: int) -> int | None:
    """The Working account's available funds, in minor units: from an Account Balance
    result, or a B2C result's B2CWorkingAccountAvailableFunds."""
    return _account(result, "Working Account", "B2CWorkingAccountAvailableFunds", scale)


def utility_account_balance(result: DarajaResult, *, scale: int) -> int | None:
    """The Utility account's available funds, in minor units: the account B2C payments
    are made from (Safaricom's B2C documentation), so the payout float."""
    return _account(result, "Utility Account", "B2CUtilityAccountAvailableFunds", scale)


def _account(result: DarajaResult, name: str, b2c_key: str, scale: int) -> int | None:
    if not result.succeeded:
        return None
    if b2c_key in result.parameters:
        return _minor(result.parameters[b2c_key], b2c_key, scale=scale, max_minor=None,
                      signed=True)
    account = account_balances(result, scale=scale).get(name)
    return account.available if account else None


# --- the pieces ------------------------------------------------------------------------


def _object(body: Any, where: str = "body") -> Mapping[str, Any]:
    """A JSON object: decoded from raw bytes or text, checked for NULs and floats."""
    if where == "body" and isinstance(body, bytes | bytearray | str):
        body = load_json(body)
    if not isinstance(body, Mapping):
        raise CallbackInvalid(f"{where} is not a JSON object")
    if where == "body":
        _scan(body)
    return body


def _scan(body: Mapping[str, Any]) -> None:
    """Refuse NUL characters, binary floats and non-JSON values anywhere in the body."""
    stack: list[Any] = [body]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > 10_000:
            raise CallbackInvalid("body has too many values")
        if isinstance(item, Mapping):
            for key, value in item.items():
                if not isinstance(key, str) or "\x00" in key:
                    raise CallbackInvalid("body has a bad key")
                stack.append(value)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise CallbackInvalid("body has a NUL character")
        elif isinstance(item, float):
            raise CallbackInvalid("body has a binary float: pass the raw body, or load_json's")
        elif item is not None and not isinstance(item, bool | int | Decimal):
            raise CallbackInvalid("body has a value JSON cannot hold")


def _scalar_text(value: Any, key: str, *, required: bool = False) -> str:
    """Text for a string or number field, exactly as sent; missing or null is ""."""
    if value is None:
        if required:
            raise CallbackInvalid(f"{key} is missing")
        return ""
    if isinstance(value, bool):
        raise CallbackInvalid(f"{key} is not text or a number")
    if isinstance(value, int):
        if value < 0 or value > 10**30:
            raise CallbackInvalid(f"{key} is out of range")
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise CallbackInvalid(f"{key} is not a number")
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise CallbackInvalid(f"{key} is not text or a number")
    if len(text) > _MAX_TEXT:
        raise CallbackInvalid(f"{key} is too long")
    if required and not text:
        raise CallbackInvalid(f"{key} is empty")
    return text


def _text(data: Mapping[str, Any], key: str, *, optional: bool = False) -> str:
    value = data.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise CallbackInvalid(f"{key} is {'missing' if value is None else 'not text'}")
    if len(value) > _MAX_TEXT:
        raise CallbackInvalid(f"{key} is too long")
    return value


def _ident(data: Mapping[str, Any], key: str) -> str:
    """An id Daraja made (receipt, conversation or request id): short, plain ASCII."""
    text = _scalar_text(data.get(key), key, required=True)
    if len(text) > _MAX_ID or not _ID.fullmatch(text):
        raise CallbackInvalid(f"{key} is not an id")
    return text


def _receipt(value: Any, key: str) -> str:
    text = _scalar_text(value, key, required=True)
    if not re.fullmatch(r"[A-Z0-9]{6,20}", text):
        raise CallbackInvalid(f"{key} is not an M-Pesa receipt")
    return text


def _code(data: Mapping[str, Any], key: str) -> str:
    """A result code: a number (0, 1032) or a text code (SFC_IC0003), as text."""
    value = data.get(key)
    if isinstance(value, Decimal) and value.is_finite() and abs(value) < 10**12 and (
            value == value.to_integral_value()):
        value = int(value)
    text = _scalar_text(value, key, required=True).strip()
    if not re.fullmatch(r"[A-Za-z0-9_.]{1,20}", text):
        raise CallbackInvalid(f"{key} is not a result code")
    if _DIGITS.fullmatch(text):
        text = str(int(text))  # "00000000" and 0 are the same success
    return text


def _digits(data: Mapping[str, Any], key: str) -> str:
    text = _scalar_text(data.get(key), key, required=True)
    if not _DIGITS.fullmatch(text) or len(text) > 12:
        raise CallbackInvalid(f"{key} is not a short code")
    return text


def _msisdn(data: Mapping[str, Any], key: str) -> str:
    text = _scalar_text(data.get(key), key, required=True).strip()
    if not _msisdn_ok(text):
        raise CallbackInvalid(f"{key} is not a phone number, masked or hashed")
    return text


def _msisdn_ok(text: str) -> bool:
    """A full number, one masked with *, or a hex digest."""
    return bool(re.fullmatch(r"\+?[0-9*]{9,15}", text) or re.fullmatch(r"[0-9a-fA-F]{32,128}",
                                                                        text))


def _e164(msisdn: str) -> str | None:
    digits = msisdn.lstrip("+")
    return "+" + digits if _KENYAN_MSISDN.fullmatch(digits) else None


def _pairs(items: Any, where: str, *, name: str) -> dict[str, str]:
    """A Daraja list of {name: ..., "Value": ...} (or one such object) as a dict of text."""
    if items is None:
        return {}
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, list):
        raise CallbackInvalid(f"{where} is not a list")
    pairs: dict[str, str] = {}
    for item in items[:200]:
        if not isinstance(item, Mapping):
            raise CallbackInvalid(f"{where} has an item that is not an object")
        key = item.get(name)
        if not isinstance(key, str) or not key or len(key) > _MAX_TEXT:
            raise CallbackInvalid(f"{where} has an item without a {name}")
        pairs.setdefault(key, _scalar_text(item.get("Value"), f"{where}.{key}"))
    return pairs


def _minor(value: Any, key: str, *, scale: int, max_minor: int | None,
           signed: bool = False) -> int:
    """Minor units for an amount sent as a decimal string or a JSON number, exactly.

    Refused: a missing value, bool, float, exponent notation ("1e3"), a sign (unless
    `signed`), more decimals than the scale and M-Pesa allow (2 for KES), zero (unless
    `signed`), more than `max_minor`, and anything past a 64-bit counter.
    """
    places = min(2, _decimals(scale))
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise CallbackInvalid(f"{key} is {'missing' if value is None else 'not an amount'}")
    if isinstance(value, int):
        if abs(value) >= 10**20:
            raise CallbackInvalid(f"{key} is too large")
        text = str(value)
    elif isinstance(value, Decimal | str):
        text = str(value).strip()
    else:
        raise CallbackInvalid(f"{key} is not an amount")
    sign = r"-?" if signed else ""
    match = re.fullmatch(rf"({sign})([0-9]{{1,20}})(?:\.([0-9]{{1,{places}}}))?", text) \
        if places else re.fullmatch(rf"({sign})([0-9]{{1,20}})()", text)
    if match is None:
        raise CallbackInvalid(f"{key} is not an amount with at most {places} decimals")
    negative, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    minor = int(whole) * scale + int(fraction.ljust(_decimals(scale), "0") or "0")
    if minor > INT64_MAX:
        raise CallbackInvalid(f"{key} is too large")
    if negative:
        minor = -minor
    if minor <= 0 and not signed:
        raise CallbackInvalid(f"{key} is not positive")
    if max_minor is not None and minor > max_minor:
        raise CallbackInvalid(f"{key} is above the maximum")
    return minor


def _decimals(scale: int) -> int:
    decimals = len(str(scale)) - 1
    if scale < 1 or 10**decimals != scale:
        raise ValueError(f"scale must be a power of ten, not {scale}")
    return decimals


def _stamp(value: Any, key: str, *, zone: tzinfo, now: datetime) -> datetime:
    """`YYYYMMDDHHmmss` (text or number), Nairobi wall clock, as aware UTC."""
    text = _scalar_text(value, key, required=True)
    if not _STAMP.fullmatch(text):
        raise CallbackInvalid(f"{key} is not YYYYMMDDHHmmss")
    return _checked_time(text, key, zone, now)


def _checked_time(text: str, key: str, zone: tzinfo, now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    try:
        local = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=zone)
        moment = local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise CallbackInvalid(f"{key} is not a date and time") from None
    if not EARLIEST <= moment <= now + timedelta(days=1):
        raise CallbackInvalid(f"{key} is outside {EARLIEST:%Y-%m-%d} to a day from now")
    return moment

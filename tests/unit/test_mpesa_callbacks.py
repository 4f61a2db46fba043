"""mpesa.callbacks: Daraja's bodies as typed values; every body that can never be valid is
refused with CallbackInvalid, and nothing else is ever raised."""
from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpesa.callbacks import (
    ACK,
    CallbackInvalid,
    account_balances,
    b2c_amount,
    b2c_completed_at,
    b2c_receipt,
    c2b_answer,
    load_json,
    parse_c2b,
    parse_result,
    parse_stk_callback,
    utility_account_balance,
    working_account_balance,
)

NAIROBI = ZoneInfo("Africa/Nairobi")
OK = "The service request is processed successfully."
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
KW: dict[str, Any] = {"scale": 100, "zone": NAIROBI, "now": NOW}

C2B = {
    "TransactionType": "Pay Bill", "TransID": "RKTQDM7W6S", "TransTime": "20250301100530",
    "TransAmount": "1500.00", "BusinessShortCode": "600638", "BillRefNumber": " L1042 ",
    "InvoiceNumber": "", "OrgAccountBalance": "", "ThirdPartyTransID": "",
    "MSISDN": "25470****149", "FirstName": "John", "MiddleName": "", "LastName": "Doe",
}
STK_PAID = {"Body": {"stkCallback": {
    "MerchantRequestID": "29115-34620561-1", "CheckoutRequestID": "ws_CO_191220191020363925",
    "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
    "CallbackMetadata": {"Item": [
        {"Name": "Amount", "Value": Decimal("1.00")},
        {"Name": "MpesaReceiptNumber", "Value": "NLJ7RT61SV"},
        {"Name": "Balance"}, {"Name": "TransactionDate", "Value": 20250301102115},
        {"Name": "PhoneNumber", "Value": 254708374149}]}}}}
STK_CANCELLED = {"Body": {"stkCallback": {
    "MerchantRequestID": "8555-67195-1", "CheckoutRequestID": "ws_CO_27072017151044001",
    "ResultCode": 1032, "ResultDesc": "[STK_CB - ]Request cancelled by user"}}}
B2C_OK = {"Result": {
    "ResultType": 0, "ResultCode": 0, "ResultDesc": OK,
    "OriginatorConversationID": "payout-17", "ConversationID": "AG_20250301_2010364430d9bbdaf872",
    "TransactionID": "SG632NMUAB",
    "ResultParameters": {"ResultParameter": [
        {"Key": "TransactionAmount", "Value": 10},
        {"Key": "TransactionReceipt", "Value": "SG632NMUAB"},
        {"Key": "ReceiverPartyPublicName", "Value": "254705912645 - NICHOLAS JOHN SONGOK"},
        {"Key": "TransactionCompletedDateTime", "Value": "01.03.2025 13:48:52"},
        {"Key": "B2CUtilityAccountAvailableFunds", "Value": Decimal("8959269.60")},
        {"Key": "B2CWorkingAccountAvailableFunds", "Value": Decimal("1199371.00")},
        {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
        {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": Decimal("-1980.00")}]},
    "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL",
                                        "Value": "https://internalsandbox.example/b2c"}}}}
B2C_FAILED = {"Result": {
    "ResultType": 0, "ResultCode": 2001, "ResultDesc": "The initiator information is invalid.",
    "OriginatorConversationID": "payout-18", "ConversationID": "AG_20240707_201062f6f6f5804f7a33",
    "TransactionID": "SG722NMVXQ",
    "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://x.example"}}}}
BALANCE = {"Result": {
    "ResultType": 0, "ResultCode": 0, "ResultDesc": OK,
    "OriginatorConversationID": "10106-1121464-1", "ConversationID": "AG_20180828_00004b46523e4995",
    "TransactionID": "MHS0000000",
    "ResultParameters": {"ResultParameter": [
        {"Key": "AccountBalance", "Value": "Working Account|KES|453845.00|453845.00|0.00|0.00"
                                            "&Float Account|KES|0.00|0.00|0.00|0.00"
                                            "&Utility Account|KES|65602.50|65000.50|602.00|0.00"
                                            "&Charges Paid Account|KES|-660.00|-660.00|0.00|0.00"},
        {"Key": "BOCompletedTime", "Value": 20180828202456}]}}}
STATUS = {"Result": {
    "ConversationID": "AG_20180223_0000493344ae97d86f75",
    "OriginatorConversationID": "3213-416199-2",
    "ReferenceData": {"ReferenceItem": {"Key": "Occasion"}},
    "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
    "ResultParameters": {"ResultParameter": [
        {"Key": "DebitPartyName", "Value": "600310 - Safaricom333"},
        {"Key": "DebitPartyName", "Value": "254708374149 - John Doe"},
        {"Key": "OriginatorConversationID", "Value": "3211-416020-3"},
        {"Key": "TransactionReason"}, {"Key": "TransactionStatus", "Value": "Completed"},
        {"Key": "Amount", "Value": "300"}, {"Key": "ReceiptNo", "Value": "MBN31H462N"}]},
    "ResultType": 0, "TransactionID": "MBN0000000"}}


def raw(body: Any) -> bytes:
    """The body as Daraja sends it: Decimals as JSON numbers with their digits (1199371.00)."""
    text = json.dumps(body, default=lambda d: f"@@{d}@@")
    return re.sub(r'"@@([^@]*)@@"', r"\1", text).encode()


def changed(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target = body
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


# --- valid shapes -----------------------------------------------------------------------


def test_c2b_payment():
    payment = parse_c2b(raw(C2B), **KW)
    assert payment.trans_id == "RKTQDM7W6S"
    assert payment.trans_time == datetime(2025, 3, 1, 7, 5, 30, tzinfo=UTC)  # Nairobi is +3
    assert (payment.amount, payment.bill_ref, payment.shortcode) == (150000, "L1042", "600638")
    assert (payment.msisdn, payment.phone, payment.payer_name) == ("25470****149", None,
                                                                   "John Doe")
    assert payment.transaction_type == "Pay Bill"


@pytest.mark.parametrize("msisdn, phone", [
    ("254708374149", "+254708374149"), (254708374149, "+254708374149"),
    ("2547 08374149".replace(" ", ""), "+254708374149"),
    ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", None),
])
def test_c2b_phone_is_kept_when_full_and_none_when_hashed(msisdn, phone):
    assert parse_c2b(changed(C2B, ("MSISDN",), msisdn), **KW).phone == phone


@pytest.mark.parametrize("amount, minor", [("10", 1000), ("10.5", 1050), ("10.50", 1050),
                                           (10, 1000), (Decimal("0.01"), 1),
                                           ("250000.00", 25_000_000)])
def test_c2b_amounts_are_exact(amount, minor):
    assert parse_c2b(changed(C2B, ("TransAmount",), amount), **KW).amount == minor


def test_c2b_amount_at_other_scales():
    assert parse_c2b(changed(C2B, ("TransAmount",), "12"), scale=1, zone=NAIROBI,
                     now=NOW).amount == 12
    assert parse_c2b(changed(C2B, ("TransAmount",), "1.25"), scale=1000, zone=NAIROBI,
                     now=NOW).amount == 1250
    with pytest.raises(CallbackInvalid):
        parse_c2b(changed(C2B, ("TransAmount",), "12.5"), scale=1, zone=NAIROBI, now=NOW)


def test_c2b_names_and_optional_fields_may_be_missing():
    body = {k: v for k, v in C2B.items() if k not in (
        "FirstName", "MiddleName", "LastName", "InvoiceNumber", "ThirdPartyTransID",
        "OrgAccountBalance", "TransactionType")}
    payment = parse_c2b(body, **KW)
    assert (payment.payer_name, payment.transaction_type, payment.invoice_number) == ("", "", "")


def test_a_decoded_mapping_without_floats_is_accepted_too():
    assert parse_c2b(copy.deepcopy(C2B), **KW).amount == 150000
    assert parse_result(load_json(raw(B2C_OK))).succeeded


def test_stk_paid():
    result = parse_stk_callback(raw(STK_PAID), **KW)
    assert result.paid and not result.cancelled
    assert (result.merchant_request_id, result.checkout_request_id) == (
        "29115-34620561-1", "ws_CO_191220191020363925")
    assert (result.amount, result.receipt, result.phone) == (100, "NLJ7RT61SV", "+254708374149")
    assert result.paid_at == datetime(2025, 3, 1, 7, 21, 15, tzinfo=UTC)
    assert result.result_desc.startswith("The service request")


def test_stk_cancelled_and_other_failures():
    result = parse_stk_callback(raw(STK_CANCELLED), **KW)
    assert result.cancelled and not result.paid and result.result_code == "1032"
    assert (result.amount, result.receipt, result.paid_at, result.phone) == (None,) * 4
    text_code = changed(STK_CANCELLED, ("Body", "stkCallback", "ResultCode"), "SFC_IC0003")
    assert parse_stk_callback(text_code, **KW).result_code == "SFC_IC0003"
    assert parse_stk_callback(changed(STK_CANCELLED, ("Body", "stkCallback", "ResultCode"),
                                      "1037"), **KW).result_code == "1037"


def test_stk_masked_phone_is_kept_but_not_made_a_number():
    body = changed(STK_PAID, ("Body", "stkCallback", "CallbackMetadata", "Item", 4, "Value"),
                   "2547****149")
    result = parse_stk_callback(body, **KW)
    assert (result.phone, result.msisdn) == (None, "2547****149")


def test_b2c_result_and_its_helpers():
    result = parse_result(raw(B2C_OK))
    assert result.succeeded and result.result_type == 0
    assert (result.originator_conversation_id, result.transaction_id) == ("payout-17",
                                                                          "SG632NMUAB")
    assert result.parameters["B2CWorkingAccountAvailableFunds"] == "1199371.00"
    assert result.parameters["B2CRecipientIsRegisteredCustomer"] == "Y"
    assert result.reference == {"QueueTimeoutURL": "https://internalsandbox.example/b2c"}
    assert b2c_receipt(result) == "SG632NMUAB"
    assert b2c_amount(result, scale=100) == 1000
    assert working_account_balance(result, scale=100) == 119_937_100
    assert utility_account_balance(result, scale=100) == 895_926_960
    assert b2c_completed_at(result, zone=NAIROBI, now=NOW) == datetime(2025, 3, 1, 10, 48, 52,
                                                                      tzinfo=UTC)


def test_a_failed_b2c_has_no_receipt_or_amount():
    result = parse_result(raw(B2C_FAILED))
    assert not result.succeeded and result.result_code == "2001"
    assert result.parameters == {}
    assert b2c_receipt(result) is None and b2c_amount(result, scale=100) is None
    assert working_account_balance(result, scale=100) is None


def test_account_balance_result():
    result = parse_result(raw(BALANCE))
    accounts = account_balances(result, scale=100)
    assert list(accounts) == ["Working Account", "Float Account", "Utility Account",
                              "Charges Paid Account"]
    utility = accounts["Utility Account"]
    assert (utility.currency, utility.current, utility.available, utility.reserved) == (
        "KES", 6_560_250, 6_500_050, 60_200)
    assert accounts["Charges Paid Account"].available == -66_000
    assert working_account_balance(result, scale=100) == 45_384_500
    assert utility_account_balance(result, scale=100) == 6_500_050
    assert result.parameters["BOCompletedTime"] == "20180828202456"


def test_transaction_status_result_keeps_the_first_of_a_repeated_key():
    result = parse_result(raw(STATUS))
    assert result.parameters["DebitPartyName"] == "600310 - Safaricom333"
    assert result.parameters["TransactionReason"] == ""
    assert (result.parameters["TransactionStatus"], result.parameters["ReceiptNo"]) == (
        "Completed", "MBN31H462N")
    assert result.reference == {"Occasion": ""}


def test_one_parameter_may_come_as_an_object_not_a_list():
    body = changed(B2C_OK, ("Result", "ResultParameters", "ResultParameter"),
                   {"Key": "TransactionReceipt", "Value": "SG632NMUAB"})
    assert parse_result(body).parameters == {"TransactionReceipt": "SG632NMUAB"}


def test_a_timeout_result_may_lack_transaction_id_and_parameters():
    body = {"Result": {"ResultType": 1, "ResultCode": "1", "ResultDesc": "timed out",
                       "OriginatorConversationID": "p-1", "ConversationID": "AG_1"}}
    result = parse_result(json.dumps(body))
    assert (result.result_type, result.transaction_id, result.parameters) == (1, "", {})


def test_success_codes_are_normalised():
    assert parse_result(changed(B2C_FAILED, ("Result", "ResultCode"), "00000000")).succeeded
    assert parse_result(changed(B2C_FAILED, ("Result", "ResultCode"), "0")).succeeded


def test_answers():
    assert c2b_answer() == {"ResultCode": "0", "ResultDesc": "Accepted"}
    assert c2b_answer("C2B00012") == {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
    with pytest.raises(ValueError):
        c2b_answer("C2B99999")
    assert ACK["ResultCode"] == 0


# --- invalid bodies ---------------------------------------------------------------------

AMOUNTS_NEVER_VALID = ["1e3", "1E3", "-5", "10.001", "0", "0.00", "", " ", "ten", "1,000",
                       "NaN", "Infinity", "+5", ".5", "5.", "0x10", "１０", 2**63, str(2**63),
                       -1, 0, True, None, [], {}, 10.5, Decimal("1E+3"), Decimal("NaN")]


@pytest.mark.parametrize("amount", AMOUNTS_NEVER_VALID)
def test_amounts_that_can_never_be_valid(amount):
    with pytest.raises(CallbackInvalid):
        parse_c2b(changed(C2B, ("TransAmount",), amount), **KW)


@pytest.mark.parametrize("amount", ["1e3", "-5", "10.001", 2**63, 0])
def test_stk_and_b2c_amounts_that_can_never_be_valid(amount):
    stk = changed(STK_PAID, ("Body", "stkCallback", "CallbackMetadata", "Item", 0, "Value"),
                  amount)
    with pytest.raises(CallbackInvalid):
        parse_stk_callback(stk, **KW)
    b2c = parse_result(changed(B2C_OK, ("Result", "ResultParameters", "ResultParameter", 0,
                                        "Value"), amount))
    with pytest.raises(CallbackInvalid):
        b2c_amount(b2c, scale=100)


def test_amounts_above_the_maximum_or_a_64_bit_counter():
    assert parse_c2b(changed(C2B, ("TransAmount",), "250000"), max_minor=25_000_000,
                     **KW).amount == 25_000_000
    with pytest.raises(CallbackInvalid, match="maximum"):
        parse_c2b(changed(C2B, ("TransAmount",), "250000.01"), max_minor=25_000_000, **KW)
    with pytest.raises(CallbackInvalid, match="too large"):
        parse_c2b(changed(C2B, ("TransAmount",), "92233720368547758.08"), **KW)
    assert parse_c2b(changed(C2B, ("TransAmount",), "92233720368547758.07"),
                     **KW).amount == 2**63 - 1


@pytest.mark.parametrize("stamp", ["19000101000000", "29990101000000", "20250230101010",
                                   "20251301000000", "2025030110053", "202503011005300",
                                   "2025-03-01 10:05", "", 20250301100530.0, None,
                                   "20191231235959", "20250303120000"])
def test_times_outside_the_window_or_not_times(stamp):
    with pytest.raises(CallbackInvalid):
        parse_c2b(changed(C2B, ("TransTime",), stamp), **KW)


def test_the_window_runs_from_2020_to_a_day_after_now():
    assert parse_c2b(changed(C2B, ("TransTime",), "20200101030000"), **KW).trans_time == (
        datetime(2020, 1, 1, tzinfo=UTC))
    assert parse_c2b(changed(C2B, ("TransTime",), "20250302150000"), **KW)  # now + 1 day
    with pytest.raises(CallbackInvalid):
        parse_c2b(changed(C2B, ("TransTime",), "20250302150001"), **KW)
    with pytest.raises(CallbackInvalid):
        parse_stk_callback(changed(STK_PAID, ("Body", "stkCallback", "CallbackMetadata", "Item",
                                              3, "Value"), 19000101000000), **KW)


@pytest.mark.parametrize("path, value", [
    (("TransID",), KeyError), (("TransID",), ""), (("TransID",), ["RK"]), (("TransID",), 1.5),
    (("TransID",), "RK TQ"), (("TransID",), "R" * 65), (("TransID",), "RK\x00TQ"),
    (("TransAmount",), KeyError), (("TransTime",), KeyError), (("MSISDN",), KeyError),
    (("MSISDN",), "john@example"), (("MSISDN",), True), (("BusinessShortCode",), "60a638"),
    (("BusinessShortCode",), KeyError), (("BillRefNumber",), 1042),
    (("BillRefNumber",), "L1\x0042"), (("FirstName",), {"a": 1}), (("LastName",), "x" * 300),
    (("InvoiceNumber",), "\x00"), (("Extra",), "has a NUL \x00 even where unused"),
])
def test_c2b_bodies_that_can_never_be_valid(path, value):
    with pytest.raises(CallbackInvalid):
        parse_c2b(changed(C2B, path, value), **KW)


@pytest.mark.parametrize("body", [
    changed(STK_PAID, ("Body",), KeyError), changed(STK_PAID, ("Body",), []),
    changed(STK_PAID, ("Body", "stkCallback"), "paid"),
    changed(STK_PAID, ("Body", "stkCallback", "CheckoutRequestID"), KeyError),
    changed(STK_PAID, ("Body", "stkCallback", "ResultCode"), KeyError),
    changed(STK_PAID, ("Body", "stkCallback", "ResultCode"), True),
    changed(STK_PAID, ("Body", "stkCallback", "ResultCode"), -1),
    changed(STK_PAID, ("Body", "stkCallback", "ResultCode"), "0; DROP"),
    changed(STK_PAID, ("Body", "stkCallback", "CallbackMetadata"), KeyError),
    changed(STK_PAID, ("Body", "stkCallback", "CallbackMetadata", "Item"), "Amount"),
    changed(STK_PAID, ("Body", "stkCallback", "CallbackMetadata", "Item", 1), KeyError),
    changed(STK_PAID, ("Body", "stkCallback", "CallbackMetadata", "Item", 1, "Value"), "abc"),
    changed(STK_PAID, ("Body", "stkCallback", "CallbackMetadata", "Item", 4, "Value"), "me"),
    changed(STK_PAID, ("Body", "stkCallback", "CallbackMetadata", "Item", 0), {"Value": 1}),
    changed(STK_PAID, ("Body", "stkCallback", "MerchantRequestID"), "a\x00b"),
])
def test_stk_bodies_that_can_never_be_valid(body):
    with pytest.raises(CallbackInvalid):
        parse_stk_callback(body, **KW)


@pytest.mark.parametrize("body", [
    changed(B2C_OK, ("Result",), KeyError), changed(B2C_OK, ("Result",), [1]),
    changed(B2C_OK, ("Result", "ResultCode"), KeyError),
    changed(B2C_OK, ("Result", "ResultCode"), None),
    changed(B2C_OK, ("Result", "OriginatorConversationID"), KeyError),
    changed(B2C_OK, ("Result", "OriginatorConversationID"), ""),
    changed(B2C_OK, ("Result", "ConversationID"), {"id": 1}),
    changed(B2C_OK, ("Result", "ResultType"), "zero"),
    changed(B2C_OK, ("Result", "ResultType"), 99),
    changed(B2C_OK, ("Result", "ResultDesc"), 5),
    changed(B2C_OK, ("Result", "ResultParameters"), []),
    changed(B2C_OK, ("Result", "ResultParameters", "ResultParameter"), "x"),
    changed(B2C_OK, ("Result", "ResultParameters", "ResultParameter", 0), "TransactionAmount"),
    changed(B2C_OK, ("Result", "ResultParameters", "ResultParameter", 0, "Key"), 7),
    changed(B2C_OK, ("Result", "ResultParameters", "ResultParameter", 0, "Value"), [10]),
    changed(B2C_OK, ("Result", "ResultParameters", "ResultParameter", 2, "Value"), "a\x00"),
    changed(B2C_OK, ("Result", "ReferenceData", "ReferenceItem"), 3),
])
def test_results_that_can_never_be_valid(body):
    with pytest.raises(CallbackInvalid):
        parse_result(body)


@pytest.mark.parametrize("raw_body", [
    b"", b"null", b"[]", b"42", b'"Result"', b"{", b'{"Result": NaN}',
    b'{"Result": {"ResultCode": Infinity}}', b"\xff\xfe{}", b'{"a": "\x00"}',
    b'{"a": "\\u0000"}', b"[" * 100_000, b"1" * 5000, b'{"x": "' + b"a" * 70_000 + b'"}',
])
def test_raw_bodies_that_are_not_json_objects(raw_body):
    for parse in (lambda b: parse_result(b), lambda b: parse_c2b(b, **KW),
                  lambda b: parse_stk_callback(b, **KW)):
        with pytest.raises(CallbackInvalid):
            parse(raw_body)


def test_binary_floats_are_refused_not_rounded():
    decoded_badly = json.loads(raw(B2C_OK))  # plain json: 8959269.60 became a float
    with pytest.raises(CallbackInvalid, match="float"):
        parse_result(decoded_badly)
    with pytest.raises(CallbackInvalid, match="float"):
        parse_stk_callback(json.loads(raw(STK_PAID)), **KW)


@pytest.mark.parametrize("text", ["Working Account|KES|1.00|1.00|0.00",
                                  "Working Account|KES|1.00|1e3|0.00|0.00",
                                  "Working Account|kes|1.00|1.00|0.00|0.00",
                                  "|KES|1.00|1.00|0.00|0.00",
                                  "Working Account|KES|1.001|1.00|0.00|0.00"])
def test_account_balance_text_that_can_never_be_valid(text):
    body = changed(BALANCE, ("Result", "ResultParameters", "ResultParameter", 0, "Value"), text)
    with pytest.raises(CallbackInvalid):
        account_balances(parse_result(body), scale=100)


# --- anything at all --------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30)
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=30), children, max_size=6),
    max_leaves=40)

# Bodies near the real shapes, so the parsers get past the first checks.
c2b_like = st.fixed_dictionaries(
    {k: json_values | st.just(v) for k, v in C2B.items()})
stk_like = st.builds(
    lambda code, items, cb: {"Body": {"stkCallback": {**cb, "ResultCode": code,
                                                      "CallbackMetadata": {"Item": items}}}},
    json_values | st.sampled_from([0, 1032, "0"]),
    st.lists(st.fixed_dictionaries({"Name": st.sampled_from(
        ["Amount", "MpesaReceiptNumber", "TransactionDate", "PhoneNumber", "Balance"])
        | json_values, "Value": json_values}), max_size=6),
    st.fixed_dictionaries({"MerchantRequestID": json_values | st.just("m-1"),
                           "CheckoutRequestID": json_values | st.just("ws_CO_1")}))
result_like = st.builds(
    lambda code, params, r: {"Result": {**r, "ResultCode": code,
                                        "ResultParameters": {"ResultParameter": params}}},
    json_values | st.sampled_from([0, "0", 1]),
    st.lists(st.fixed_dictionaries({"Key": st.sampled_from(
        ["TransactionAmount", "TransactionReceipt", "B2CWorkingAccountAvailableFunds",
         "AccountBalance", "TransactionCompletedDateTime"]) | json_values,
        "Value": json_values}), max_size=6),
    st.fixed_dictionaries({"OriginatorConversationID": json_values | st.just("p-1"),
                           "ConversationID": json_values | st.just("AG_1"),
                           "ResultType": json_values | st.just(0)}))


def everything_about(body: Any) -> None:
    """Every parser and helper on `body`, decoded and as raw JSON text."""
    encoded = json.dumps(body, default=str).encode()
    for candidate in (body, encoded):
        for parse in (lambda b: parse_c2b(b, max_minor=10**9, **KW),
                      lambda b: parse_stk_callback(b, **KW)):
            try:
                parse(candidate)
            except CallbackInvalid:
                pass
        try:
            result = parse_result(candidate)
        except CallbackInvalid:
            continue
        for helper in (lambda r: b2c_receipt(r), lambda r: b2c_amount(r, scale=100),
                       lambda r: b2c_completed_at(r, zone=NAIROBI, now=NOW),
                       lambda r: account_balances(r, scale=100),
                       lambda r: working_account_balance(r, scale=100),
                       lambda r: utility_account_balance(r, scale=100)):
            try:
                helper(result)
            except CallbackInvalid:
                pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | c2b_like | stk_like | result_like)
def test_parsers_raise_nothing_but_callback_invalid(body):
    everything_about(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_raw_bytes_raise_nothing_but_callback_invalid(data):
    everything_about(data)

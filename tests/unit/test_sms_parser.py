"""SMS parser: English and Swahili keywords, sloppy typing, and nothing ever raised."""
from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.parser import KEYWORDS, Command, normalise_loan, parse


@pytest.mark.parametrize(
    ("text", "name", "language"),
    [
        ("HELP", "help", "en"),
        ("msaada", "help", "sw"),
        ("?", "help", None),
        ("BAL", "balance", "en"),
        ("Balance", "balance", "en"),
        ("salio", "balance", "sw"),
        ("LOANS", "loans", "en"),
        ("Mikopo", "loans", "sw"),
        ("PAY", "pay", "en"),
        ("lipa", "pay", "sw"),
        ("STOP", "stop", "en"),
        ("acha", "stop", "sw"),
        ("START", "start", "en"),
        ("ANZA", "start", "sw"),
    ],
)
def test_commands_without_arguments(text: str, name: str, language: str | None) -> None:
    assert parse(text) == Command(name, keyword_language=language)


@pytest.mark.parametrize("text", ["  bal ", "BAL.", "bal!", "*BAL#", "Bal please", "\tSALIO\n"])
def test_case_spaces_and_punctuation_around_keywords(text: str) -> None:
    assert parse(text).name == "balance"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("LEND L1042 500", "en"),
        ("pledge L1042 500", "en"),
        ("KOPESHA L1042 500", "sw"),
        ("lend l1042 500", "en"),
        ("  Lend   L1042    500  ", "en"),
        ("LEND, L1042, 500.", "en"),
    ],
)
def test_lend_in_english_and_swahili(text: str, language: str) -> None:
    assert parse(text) == Command("lend", loan="L1042", amount=50_000, keyword_language=language)


@pytest.mark.parametrize(
    ("amount", "minor"),
    [
        ("500", 50_000),
        ("1,500", 150_000),
        ("1 500", 150_000),
        ("1500.50", 150_050),
        ("1.5k", 150_000),
        ("1.5K", 150_000),
        ("2k", 200_000),
        ("1m", 100_000_000),
        ("Ksh 500", 50_000),
        ("Kes500", 50_000),
        ("ksh 500", 50_000),
        ("KSh. 500", 50_000),
        ("sh 500", 50_000),
        ("500/=", 50_000),
        ("500/-", 50_000),
        ("500 bob", 50_000),
        ("1,500.00", 150_000),
    ],
)
def test_lend_takes_every_amount_form(amount: str, minor: int) -> None:
    command = parse(f"LEND L1042 {amount}")
    assert (command.loan, command.amount, command.error) == ("L1042", minor, None)


@pytest.mark.parametrize("loan", ["L1042", "1042", "l1042", "L-1042", "#L1042", "#1042", "L 1042"])
def test_loan_number_forms(loan: str) -> None:
    assert parse(f"LEND {loan} 500").loan == "L1042"
    assert parse(f"STATUS {loan}").loan == "L1042"


@pytest.mark.parametrize(
    ("token", "loan"),
    [("L1042", "L1042"), ("1042", "L1042"), ("l-1042", "L1042"), ("#L1042", "L1042")],
)
def test_normalise_loan(token: str, loan: str) -> None:
    assert normalise_loan(token) == loan


@pytest.mark.parametrize("token", ["", "L", "LL1042", "L1042x", "loan", "L10 42", "1.5k"])
def test_normalise_loan_refuses_what_is_not_a_loan(token: str) -> None:
    assert normalise_loan(token) is None


@pytest.mark.parametrize("text", ["LEND 500 L1042", "lend Ksh 500 L1042", "LEND 1.5k l-1042"])
def test_lend_amount_before_a_loan_written_with_its_l(text: str) -> None:
    command = parse(text)
    assert command.loan == "L1042"
    assert command.error is None
    assert command.amount in (50_000, 150_000)


@pytest.mark.parametrize(
    "text",
    [
        "LEND",
        "LEND L1042",
        "LEND 500",
        "LEND L1042 L2000",
        "LEND 1 L1042 500",  # a loan in the middle of an amount is ambiguous
        "KOPESHA",
    ],
)
def test_lend_usage(text: str) -> None:
    command = parse(text)
    assert command.name == "lend"
    assert command.error == "sms.lend_usage"
    assert command.amount is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("LEND L1042 abc", "amount.invalid"),
        ("LEND L1042 1,50,0", "amount.invalid"),
        ("LEND L1042 0", "amount.not_positive"),
        ("LEND L1042 -500", "amount.not_positive"),
        ("LEND L1042 0.001", "amount.too_precise"),
        ("LEND L1042 99999999999999", "amount.too_large"),
    ],
)
def test_lend_with_a_bad_amount_carries_the_amount_key(text: str, key: str) -> None:
    command = parse(text)
    assert (command.name, command.loan, command.amount, command.error) == (
        "lend",
        "L1042",
        None,
        key,
    )


def test_lend_uses_the_given_scale_and_currency() -> None:
    command = parse("LEND L1042 UGX 1,500", scale=1, currency="UGX")
    assert command.amount == 1_500


@pytest.mark.parametrize(
    ("text", "name", "language"),
    [
        ("YES 4821", "yes", "en"),
        ("yes, 4821.", "yes", "en"),
        ("YES #4821", "yes", "en"),
        ("Yes4821", "yes", "en"),
        ("NDIO 4821", "yes", "sw"),
        ("ndiyo 4821", "yes", "sw"),
        ("NO 4821", "no", "en"),
        ("no: 4821!", "no", "en"),
        ("HAPANA 4821", "no", "sw"),
    ],
)
def test_confirmations(text: str, name: str, language: str) -> None:
    assert parse(text) == Command(name, code="4821", keyword_language=language)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("YES", "sms.yes_usage"),
        ("NDIO abcd", "sms.yes_usage"),
        ("YES 12", "sms.yes_usage"),
        ("YES L1042", "sms.yes_usage"),
        ("NO", "sms.no_usage"),
        ("hapana sasa", "sms.no_usage"),
    ],
)
def test_confirmation_usage(text: str, key: str) -> None:
    command = parse(text)
    assert (command.code, command.error) == (None, key)


def test_a_bare_code_is_not_a_confirmation() -> None:
    assert parse("4821") == Command("unknown")


@pytest.mark.parametrize(
    ("text", "language"), [("STATUS L1042", "en"), ("hali 1042", "sw"), ("Status #L-1042?", "en")]
)
def test_status(text: str, language: str) -> None:
    assert parse(text) == Command("status", loan="L1042", keyword_language=language)


@pytest.mark.parametrize("text", ["STATUS", "HALI yangu", "status L"])
def test_status_usage(text: str) -> None:
    command = parse(text)
    assert (command.name, command.loan, command.error) == ("status", None, "sms.status_usage")


@pytest.mark.parametrize(
    ("text", "chosen", "keyword_language"),
    [
        ("LANG EN", "en", "en"),
        ("lang sw", "sw", "en"),
        ("LANG ENGLISH", "en", "en"),
        ("LANG Swahili", "sw", "en"),
        ("LUGHA KISWAHILI", "sw", "sw"),
        ("lugha en", "en", "sw"),
        ("LUGHA kiingereza", "en", "sw"),
    ],
)
def test_lang(text: str, chosen: str, keyword_language: str) -> None:
    assert parse(text) == Command("lang", language=chosen, keyword_language=keyword_language)


@pytest.mark.parametrize("text", ["LANG", "LANG FR", "lugha 2"])
def test_lang_usage(text: str) -> None:
    command = parse(text)
    assert (command.language, command.error) == (None, "sms.lang_usage")


@pytest.mark.parametrize(
    ("text", "reason", "language"),
    [
        ("DISPUTE L1042 I paid on 3rd, see M-Pesa QX12", "I paid on 3rd, see M-Pesa QX12", "en"),
        ("dispute 1042: never received", "never received", "en"),
        ("MALALAMIKO #L-1042 Sikupokea pesa", "Sikupokea pesa", "sw"),
        ("malalamiko L 1042 - Nimeshalipa", "Nimeshalipa", "sw"),
    ],
)
def test_dispute_keeps_the_text_as_written(text: str, reason: str, language: str) -> None:
    assert parse(text) == Command("dispute", loan="L1042", text=reason, keyword_language=language)


@pytest.mark.parametrize("text", ["DISPUTE", "DISPUTE L1042", "DISPUTE L1042 ...", "DISPUTE wrong"])
def test_dispute_usage(text: str) -> None:
    command = parse(text)
    assert (command.name, command.text, command.error) == ("dispute", None, "sms.dispute_usage")


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("LNED L1042 500", "LEND"),
        ("SALO", "SALIO"),
        ("blance", "BALANCE"),
        ("stauts L1042", "STATUS"),
        ("ndyo 4821", "NDIYO"),
        ("sálio", "SALIO"),
    ],
)
def test_typos_are_suggested_never_executed(text: str, suggestion: str) -> None:
    command = parse(text)
    assert command == Command("unknown", suggestion=suggestion)


@pytest.mark.parametrize(
    "text", ["", "   ", "xyz", "qqqqqqq", "4821", "L1042 500", "!!!", "\U0001f600"]
)
def test_unknown_without_a_suggestion(text: str) -> None:
    assert parse(text) == Command("unknown")


def test_every_keyword_is_recognised_in_any_case() -> None:
    for keyword, (name, language) in KEYWORDS.items():
        for typed in (keyword, keyword.upper(), keyword.title()):
            command = parse(typed)
            assert (command.name, command.keyword_language) == (name, language)


@given(st.text())
def test_never_raises_on_any_text(text: str) -> None:
    command = parse(text)
    assert command.name in {name for name, _ in KEYWORDS.values()} | {"unknown"}


_WORDS = st.sampled_from(
    [*KEYWORDS, "L1042", "#l-7", "1,500", "1.5k", "KSh.", "500/=", "-", "4821"]
)


@given(
    st.lists(st.one_of(_WORDS, st.text(max_size=8)), max_size=8),
    st.sampled_from([" ", ",", ""]),
)
def test_never_raises_on_keyword_like_text(words: list[str], separator: str) -> None:
    command = parse(separator.join(words))
    if command.error is None and command.name == "lend":
        assert command.loan is not None and command.amount is not None


def test_is_fast_on_long_messages() -> None:
    long_texts = ["LEND L1042 " + "1" * 5000, "DISPUTE L1 " + "x" * 5000, "!" * 5000, "a" * 5000]
    started = time.perf_counter()
    for text in long_texts * 20:
        parse(text)
    assert time.perf_counter() - started < 5.0  # no catastrophic backtracking

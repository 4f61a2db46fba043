"""SMS arguments as people write them: a loan number in quotes or brackets or split
from its letter, an amount after a bare number, PAY's amount, another loan letter, and
where a long word stops being a mistyped keyword."""
from __future__ import annotations

import pytest

from sms.parser import Command, parse


def lend(loan: str, amount: int) -> Command:
    return Command("lend", loan=loan, amount=amount, keyword_language="en")


@pytest.mark.parametrize(
    "text",
    ["LEND 500 L 1042", "LEND L 1042 500", 'LEND "L1042" 500', "LEND (L1042) 500",
     "LEND 'L1042' 500", "LEND [L1042], 500", "LEND 1042 500"],
)
def test_lend_reads_the_loan_and_the_amount_however_the_loan_is_wrapped(text: str) -> None:
    assert parse(text) == lend("L1042", 50_000)


def test_lend_with_the_letter_apart_after_the_amount_is_never_the_amount_as_a_loan() -> None:
    # Read wrongly, this would lend KES 1,042 to loan L500.
    command = parse("LEND 500 L 1042")
    assert (command.loan, command.amount) == ("L1042", 50_000)


@pytest.mark.parametrize(
    ("text", "minor"),
    [("PAY 500", 50_000), ("pay 1,500", 150_000), ("PAY 1 500", 150_000),
     ("PAY KES 2k", 200_000), ("PAY 500/=", 50_000)],
)
def test_pay_with_an_amount_carries_it(text: str, minor: int) -> None:
    assert parse(text) == Command("pay", amount=minor, keyword_language="en")


def test_pay_in_swahili_and_without_an_amount() -> None:
    assert parse("LIPA 500") == Command("pay", amount=50_000, keyword_language="sw")
    assert parse("PAY") == Command("pay", keyword_language="en")


@pytest.mark.parametrize(
    ("text", "key"),
    [("PAY abc", "amount.invalid"), ("PAY 0", "amount.not_positive"),
     ("PAY 0.001", "amount.too_precise")],
)
def test_pay_with_a_bad_amount_carries_the_amount_key(text: str, key: str) -> None:
    assert parse(text) == Command("pay", error=key, keyword_language="en")


def test_pay_uses_the_given_scale_and_currency() -> None:
    assert parse("PAY UGX 1,500", scale=1, currency="UGX").amount == 1_500
    assert parse("PAY 1.5", scale=1, currency="UGX").error == "amount.too_precise"


def test_another_loan_letter_is_read_by_every_command() -> None:
    assert parse("LEND K1042 500", loan_prefix="K") == lend("K1042", 50_000)
    assert parse("LEND 500 k-1042", loan_prefix="K") == lend("K1042", 50_000)
    assert parse("LEND 1042 500", loan_prefix="K") == lend("K1042", 50_000)
    assert parse("STATUS 1042", loan_prefix="K").loan == "K1042"
    assert parse("DISPUTE K1042 never paid", loan_prefix="K") == Command(
        "dispute", loan="K1042", text="never paid", keyword_language="en")


def test_a_dispute_without_its_reason_keeps_the_loan_for_the_reply() -> None:
    assert parse("DISPUTE L1042") == Command("dispute", loan="L1042",
                                             error="sms.dispute_usage", keyword_language="en")


def test_a_word_over_twice_the_longest_keyword_is_never_taken_for_a_keyword() -> None:
    assert parse("malalamiko" + "x" * 10).suggestion == "MALALAMIKO"  # 20 letters
    assert parse("malalamiko" + "x" * 11).suggestion is None  # 21 letters


def test_a_story_or_a_correction_starting_with_x_keeps_its_first_letter() -> None:
    assert parse("STORY: Xmas stock sold out").text == "Xmas stock sold out"
    fix = parse("DATA FIX Xavier is my second name")
    assert (fix.choice, fix.text, fix.error) == ("fix", "Xavier is my second name", None)


def test_data_followed_by_a_number_is_its_usage() -> None:
    assert parse("DATA 123").error == "sms.data_usage"


def test_thanks_reads_another_loan_letter() -> None:
    assert parse("asante sana K1007", loan_prefix="K").loan == "K1007"

"""Key facts and the repayment schedule, computed before the borrower accepts (pure)."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import load_settings
from core.errors import InvalidInput
from core.loans import percent_of, quote, schedule
from core.numbers import normalise_loan_number

START = date(2026, 3, 2)


@pytest.fixture(scope="module")
def product():
    return load_settings(env={}, overrides={"loan": {"fee_percent": "5",
                                                     "lender_interest_percent": "2.5"}})


def test_quote_prices_fee_interest_and_equal_installments(product):
    facts = quote(product, 300_100, 4, START)
    assert facts.fee == 15_000  # 5% of Ksh 3,001 is 150.05: rounded down to the shilling
    assert facts.interest == 7_500  # 2.5% is 75.025: the same
    assert facts.total == 300_100 + 15_000 + 7_500 == 322_600
    assert facts.count == 4
    # 806.50 a week is no amount to pay: whole shillings, the remainder on the last
    assert [amount for _, amount in facts.schedule] == [80_600, 80_600, 80_600, 80_800]
    assert facts.installment == 80_600 and facts.last_installment == 80_800
    assert facts.first_due == START + timedelta(weeks=1)
    assert facts.last_due == START + timedelta(weeks=4)
    assert facts.cost == 22_500


@pytest.mark.parametrize("amount, term", [(49_999, 4), (5_000_001, 4), (100_000, 5)])
def test_quote_refuses_amounts_and_terms_outside_the_product(product, amount, term):
    with pytest.raises(InvalidInput) as err:
        quote(product, amount, term, START)
    assert err.value.key in ("loan.amount_range", "loan.term_invalid")


def test_every_other_week_installments():
    fortnightly = load_settings(env={}, overrides={"loan": {"installment_every_weeks": 2}})
    facts = quote(fortnightly, 100_000, 8, START)
    assert facts.count == 4
    assert [d for d, _ in facts.schedule] == [START + timedelta(weeks=2 * i) for i in (1, 2, 3, 4)]


@settings(max_examples=200, deadline=None)
@given(total=st.integers(min_value=1, max_value=10**10), count=st.integers(1, 52))
def test_schedule_is_equal_with_the_remainder_on_the_last(total, count):
    if total < count:
        return
    dues = schedule(total, count, START, 1)
    amounts = [a for _, a in dues]
    assert sum(amounts) == total
    assert len(set(amounts[:-1])) <= 1
    assert 0 <= amounts[-1] - amounts[0] < count
    assert [d for d, _ in dues] == sorted(d for d, _ in dues)


def test_percent_of_is_exact_and_rounds_down():
    assert percent_of(999, Decimal("5")) == 49
    assert percent_of(10**15 + 1, Decimal("0.1")) == 10**12
    assert percent_of(100, Decimal("0")) == 0


@pytest.mark.parametrize("raw, expected", [
    ("L1042", "L1042"), ("l1042", "L1042"), ("1042", "L1042"), ("#L-1042", "L1042"),
    (" l 1042 ", "L1042"), ("X1042", None), ("", None), ("L", None), ("+254712345678", None),
])
def test_loan_numbers_typed_any_way(raw, expected):
    assert normalise_loan_number(raw, "L") == expected


def test_loan_numbers_follow_the_configured_letter():
    assert normalise_loan_number("k1042", "K") == "K1042"
    assert normalise_loan_number("L1042", "K") is None
    assert normalise_loan_number("1042", "K") == "K1042"


@given(st.integers(1, 10_000), st.integers(1, 52))
def test_installments_are_whole_shillings_summing_to_the_total(shillings, count):
    total = shillings * 100
    dues = schedule(total, count, START, 1, 100)
    assert sum(a for _, a in dues) == total
    assert all(a % 100 == 0 for _, a in dues)
    assert len({a for _, a in dues[:-1]}) <= 1 and dues[-1][1] >= dues[0][1]

"""Money at its edges: trailing and leading zeros, the smallest scale, the largest
amount, and a refusal that is always an AmountError (the USSD nodes and the SMS parser
catch that, and nothing else)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import MAX_MINOR, NOT_POSITIVE, TOO_LARGE, AmountError, format_amount, parse_amount


@pytest.mark.parametrize(
    ("typed", "minor"),
    [("1.500", 150), ("500.000", 50_000), ("500.0000000", 50_000), ("1.50k", 150_000)],
)
def test_trailing_zeros_after_the_point_are_not_precision(typed: str, minor: int) -> None:
    assert parse_amount(typed) == minor


def test_trailing_zeros_at_a_scale_without_decimals() -> None:
    assert parse_amount("500.00", scale=1, currency="UGX") == 500


def test_leading_zeros_never_count_towards_the_size() -> None:
    assert parse_amount("0" * 20 + "500") == 50_000
    assert parse_amount("0" * 20 + "1", scale=1) == 1


@pytest.mark.parametrize("typed", ["0", "000", "0.0", ".0", "0k"])
def test_zero_at_scale_one_is_not_positive_and_an_amount_error(typed: str) -> None:
    with pytest.raises(AmountError) as refused:
        parse_amount(typed, scale=1, currency="UGX")
    assert refused.value.key == NOT_POSITIVE


def test_the_largest_amount_at_scale_one_is_accepted_and_one_more_is_not() -> None:
    assert parse_amount(str(MAX_MINOR), scale=1) == MAX_MINOR
    with pytest.raises(AmountError) as refused:
        parse_amount(str(MAX_MINOR + 1), scale=1)
    assert refused.value.key == TOO_LARGE


def test_the_error_reads_as_its_key_in_a_log() -> None:
    with pytest.raises(AmountError, match=r"^amount\.not_positive$"):
        parse_amount("0")


@given(text=st.text(max_size=30), scale=st.sampled_from([1, 10, 100, 1000]))
def test_any_text_at_any_scale_is_an_amount_or_an_amount_error(text: str, scale: int) -> None:
    try:
        minor = parse_amount(text, scale=scale)
    except AmountError:
        return
    assert 0 < minor <= MAX_MINOR


def test_an_amount_without_a_currency_has_no_leading_space() -> None:
    assert format_amount(150_000, currency="") == "1,500"
    assert format_amount(-2_000, currency="") == "-20"
    assert format_amount(150_050, currency="") == "1,500.50"

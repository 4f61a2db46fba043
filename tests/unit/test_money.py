"""Money: what people type becomes exact minor units, and formats back the same."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import MAX_MINOR, AmountError, format_amount, parse_amount, to_minor


@pytest.mark.parametrize(
    ("typed", "minor"),
    [
        ("500", 50_000),
        ("1,500", 150_000),
        ("1 500", 150_000),
        ("1500.50", 150_050),
        ("1.5k", 150_000),
        ("1.5K", 150_000),
        ("2k", 200_000),
        ("2 k", 200_000),
        ("1m", 100_000_000),
        ("1.25M", 125_000_000),
        ("KES 500", 50_000),
        ("Kes500", 50_000),
        ("ksh 500", 50_000),
        ("KSHS 500", 50_000),
        ("KSh. 500", 50_000),
        ("sh 500", 50_000),
        ("shs 500", 50_000),
        ("500/=", 50_000),
        ("500 /=", 50_000),
        ("500/-", 50_000),
        ("KSh 1,500/-", 150_000),
        ("500 bob", 50_000),
        ("500 KES", 50_000),
        ("500ksh", 50_000),
        ("5k shs", 500_000),
        ("1,500.00", 150_000),
        ("1,500,000", 150_000_000),
        ("1 500 000", 150_000_000),
        ("  500  ", 50_000),
        ("KES\u00a0500", 50_000),
        ("0.50", 50),
        (".5k", 50_000),
        ("007", 700),
        ("10,000,000,000,000", MAX_MINOR),
    ],
)
def test_parses_what_people_type(typed: str, minor: int) -> None:
    assert parse_amount(typed) == minor


def test_currency_word_before_a_multiplier_is_the_currency() -> None:
    # `500ksh` is five hundred shillings, never 500k with a stray "sh".
    assert parse_amount("500ksh") == 50_000
    assert parse_amount("5kshs") == 500


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("", "amount.invalid"),
        ("   ", "amount.invalid"),
        ("KES", "amount.invalid"),
        ("k", "amount.invalid"),
        ("abc", "amount.invalid"),
        ("five hundred", "amount.invalid"),
        ("1e5", "amount.invalid"),
        ("1,50,0", "amount.invalid"),
        ("1,50,000", "amount.invalid"),
        ("1,5", "amount.invalid"),
        ("1,500 000", "amount.invalid"),
        ("500.", "amount.invalid"),
        ("1.2.3", "amount.invalid"),
        ("USD 500", "amount.invalid"),
        ("\u0665\u0660\u0660", "amount.invalid"),
        ("0", "amount.not_positive"),
        ("0.00", "amount.not_positive"),
        ("KES 0", "amount.not_positive"),
        ("-500", "amount.not_positive"),
        ("-KES 20", "amount.not_positive"),
        ("KES -20", "amount.not_positive"),
        ("0.001", "amount.too_precise"),
        ("1500.505", "amount.too_precise"),
        ("1.234567k", "amount.too_precise"),
        ("10000000000001", "amount.too_large"),
        ("2000000000m", "amount.too_large"),
        ("9" * 5000, "amount.too_large"),
    ],
)
def test_rejects_with_a_key(typed: str, key: str) -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount(typed)
    assert caught.value.key == key


def test_amount_error_is_a_value_error_carrying_its_key() -> None:
    error = AmountError("amount.invalid")
    assert isinstance(error, ValueError)
    assert error.key == "amount.invalid"


def test_other_scales_and_currencies() -> None:
    assert parse_amount("UGX 1,500", scale=1, currency="UGX") == 1_500
    assert parse_amount("ksh 1,500", scale=1, currency="UGX") == 1_500
    assert parse_amount("1.5", scale=1000) == 1_500
    with pytest.raises(AmountError) as caught:
        parse_amount("1.5", scale=1)
    assert caught.value.key == "amount.too_precise"


def test_scale_must_be_a_power_of_ten() -> None:
    with pytest.raises(ValueError, match="power of ten"):
        parse_amount("1", scale=12)
    with pytest.raises(ValueError, match="power of ten"):
        format_amount(1, scale=0)


@pytest.mark.parametrize(
    ("minor", "text"),
    [
        (150_000, "KES 1,500"),
        (150_050, "KES 1,500.50"),
        (5, "KES 0.05"),
        (0, "KES 0"),
        (-2_000, "-KES 20"),
        (12_345_678_901, "KES 123,456,789.01"),
    ],
)
def test_formats_for_an_sms(minor: int, text: str) -> None:
    assert format_amount(minor) == text


def test_formats_other_scales() -> None:
    assert format_amount(1_500, currency="UGX", scale=1) == "UGX 1,500"
    assert format_amount(1_505, scale=1000) == "KES 1.505"


def test_to_minor() -> None:
    assert to_minor(500) == 50_000
    assert to_minor(500, scale=1) == 500


# GSM 03.38 basic character set, without the escape-table characters.
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


@given(st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR))
def test_formatted_amounts_are_gsm7(minor: int) -> None:
    assert set(format_amount(minor)) <= _GSM7


@given(st.integers(min_value=1, max_value=MAX_MINOR))
def test_round_trip(minor: int) -> None:
    assert parse_amount(format_amount(minor)) == minor


@given(
    st.integers(min_value=1, max_value=MAX_MINOR),
    st.sampled_from([1, 10, 100, 1000]),
)
def test_round_trip_at_any_scale(minor: int, scale: int) -> None:
    text = format_amount(minor, scale=scale, currency="UGX")
    assert parse_amount(text, scale=scale, currency="UGX") == minor


_AMOUNTISH = st.text(alphabet="0123456789,. -/=kKmMsShHbBoOeE\u00a0", max_size=30)


@given(st.one_of(st.text(), _AMOUNTISH))
def test_never_raises_anything_but_amount_error(text: str) -> None:
    try:
        minor = parse_amount(text)
    except AmountError as error:
        assert error.key in {
            "amount.invalid",
            "amount.too_precise",
            "amount.not_positive",
            "amount.too_large",
        }
    else:
        assert 0 < minor <= MAX_MINOR

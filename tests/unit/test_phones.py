"""Phone numbers: typed any common way, E.164 out; dialled at home; masked in logs."""
from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.phones import local, masked, normalise, try_normalise


@pytest.mark.parametrize(
    "typed",
    ["0712345678", "0712 345 678", "+254712345678", "254712345678", "00254712345678",
     " +254 712-345-678 ", "(0712) 345678"],
)
def test_every_common_way_of_typing_a_kenyan_number(typed: str) -> None:
    assert normalise(typed) == "+254712345678"


@pytest.mark.parametrize("typed", ["", "   ", "0712", "hello", "07123456789012", "+999712345678"])
def test_what_is_not_a_number_is_refused_with_its_key(typed: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise(typed)
    assert refused.value.key == "phone.invalid"
    assert try_normalise(typed) is None


def test_the_default_region_decides_what_a_local_number_means() -> None:
    assert try_normalise("0712 345678") == "+254712345678"
    assert try_normalise("0712 345678", "TZ") == "+255712345678"
    assert normalise("0772 123456", "UG") == "+256772123456"
    # written with its country code, a number is the same in any region
    assert try_normalise("+254712345678", "TZ") == "+254712345678"
    assert try_normalise("255712345678") == "+255712345678"


def test_at_most_32_characters_are_read() -> None:
    padded = "+254" + " " * 19 + "712345678"
    assert len(padded) == 32 and normalise(padded) == "+254712345678"
    with pytest.raises(InvalidInput):
        normalise("+254" + " " * 20 + "712345678")


def test_a_number_as_people_dial_it_at_home() -> None:
    assert local("+254712345678") == "0712 345678"
    assert local("+255712345678") == "+255712345678"  # abroad: left international
    assert local("+255712345678", "TZ") == "0712 345 678"
    assert local("not a number") == "not a number"
    assert local("0712345678") == "0712 345678"  # already written at home: read in KE
    assert local("0712345678", "TZ") == "0712 345 678"


def test_masked_shows_the_country_and_the_last_four_only() -> None:
    assert masked("+254712345678") == "+2547****5678"
    assert masked("+2547123456789") == "+2547****6789"


@pytest.mark.parametrize("text", ["", "+254", "0712345678", "+25471234567", "+12025550123"])
def test_masked_hides_everything_when_it_could_not_hide_four(text: str) -> None:
    assert masked(text) == "****"

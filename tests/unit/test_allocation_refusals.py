"""Splitting money: each refusal says what was wrong, and whole units are whole for any
unit, not only the shilling."""
from __future__ import annotations

import pytest

from core.allocation import largest_remainder, largest_remainder_whole


@pytest.mark.parametrize(
    ("total", "weights", "reason"),
    [
        (-1, [1], "total must not be negative"),
        (1, [-1, 2], "weights must not be negative"),
        (3, [0, 0], "cannot split a positive total over zero weights"),
        (1, [], "cannot split a positive total over zero weights"),
    ],
)
def test_each_refusal_says_what_was_wrong(total: int, weights: list[int], reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{reason}$"):
        largest_remainder(total, weights)
    with pytest.raises(ValueError, match=f"^{reason}$"):
        largest_remainder_whole(total * 100, [w * 100 for w in weights], 100)


def test_whole_units_of_two_go_whole_to_the_largest_remainder() -> None:
    # Two parties of equal weight share one unit of 2: it goes whole to the first.
    assert largest_remainder_whole(2, [2, 2], 2) == [2, 0]
    assert largest_remainder(2, [2, 2]) == [1, 1]  # in minor units it would be halved


def test_a_unit_of_one_is_the_minor_unit_split() -> None:
    assert largest_remainder_whole(5, [1, 1, 1], 1) == largest_remainder(5, [1, 1, 1]) == [2, 2, 1]

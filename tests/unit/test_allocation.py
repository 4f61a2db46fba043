"""Largest-remainder splitting: no unit lost or created, nobody paid beyond their weight."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.allocation import largest_remainder, largest_remainder_whole


def test_splits_exactly_with_ties_to_the_earlier_party():
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert largest_remainder(2, [1, 1, 1]) == [1, 1, 0]
    assert largest_remainder(1, [5, 5]) == [1, 0]
    assert largest_remainder(100, [50, 30, 20]) == [50, 30, 20]


def test_the_largest_remainder_wins_the_spare_unit():
    # 7 * 2/10 = 1.4, 7 * 5/10 = 3.5, 7 * 3/10 = 2.1: floors 1, 3, 2 leave one unit for 3.5
    assert largest_remainder(7, [2, 5, 3]) == [1, 4, 2]


def test_zero_weights_get_nothing_and_an_empty_split_is_empty():
    assert largest_remainder(5, [0, 3, 0, 2]) == [0, 3, 0, 2]
    assert largest_remainder(0, []) == []
    assert largest_remainder(0, [0, 0]) == [0, 0]


@pytest.mark.parametrize("total, weights", [(-1, [1]), (1, [-1, 2]), (3, [0, 0]), (1, [])])
def test_refuses_what_cannot_be_split(total, weights):
    with pytest.raises(ValueError):
        largest_remainder(total, weights)


weights_lists = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(weights=weights_lists, data=st.data())
def test_sum_is_exact_and_no_share_beyond_ceiling_or_weight(weights, data):
    whole = sum(weights)
    if whole == 0:
        assert largest_remainder(0, weights) == [0] * len(weights)
        return
    total = data.draw(st.integers(min_value=0, max_value=whole), label="total")
    shares = largest_remainder(total, weights)
    assert sum(shares) == total
    for share, weight in zip(shares, weights, strict=True):
        low, high = total * weight // whole, -(-total * weight // whole)
        assert low <= share <= high
        assert share <= weight  # total <= whole: nobody receives more than they are owed
        if weight == 0:
            assert share == 0


@settings(max_examples=200, deadline=None)
@given(weights=weights_lists, total=st.integers(min_value=0, max_value=10**12))
def test_deterministic_and_exact_for_totals_above_the_weights(weights, total):
    if sum(weights) == 0:
        return
    first = largest_remainder(total, weights)
    assert first == largest_remainder(total, list(weights))
    assert sum(first) == total


@settings(max_examples=100, deadline=None)
@given(weights=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=40),
       parts=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=8))
def test_repaying_in_instalments_pays_each_party_exactly_its_weight(weights, parts):
    """Split successive payments by what each is still owed: the last one settles all."""
    owed = list(weights)
    whole = sum(weights)
    received = [0] * len(weights)
    paid = 0
    for part in parts + [whole]:
        payment = min(part, whole - paid)
        if payment == 0:
            break
        shares = largest_remainder(payment, owed)
        assert sum(shares) == payment
        for i, share in enumerate(shares):
            assert share <= owed[i]
            owed[i] -= share
            received[i] += share
        paid += payment
    assert received == weights


@pytest.mark.parametrize("lenders", [1, 3, 10_000])
@pytest.mark.parametrize("kind", ["one", "prime", "whole"])
def test_one_unit_a_prime_and_the_whole_across_lenders(lenders, kind):
    weights = [1_000 + (i * 7919) % 5_003 for i in range(lenders)]  # uneven, deterministic
    whole = sum(weights)
    total = {"one": 1, "prime": 99_991 if whole > 99_991 else 997, "whole": whole}[kind]
    shares = largest_remainder(total, weights)
    assert sum(shares) == total
    assert all(0 <= s <= w for s, w in zip(shares, weights, strict=True))
    if kind == "whole":
        assert shares == weights
    if kind == "one":
        assert shares.count(1) == 1 and shares.count(0) == lenders - 1


def test_whole_units_when_everything_is_whole():
    # Ksh 1,000 to three lenders owed 333.33 each would need cents: in shillings it does not
    assert largest_remainder_whole(100_000, [30_000, 30_000, 30_000], 100) == [
        33_400, 33_300, 33_300]


def test_money_with_cents_is_still_split_exactly_to_the_cent():
    assert largest_remainder_whole(100_050, [30_000, 30_000, 30_000], 100) == [
        33_350, 33_350, 33_350]
    assert largest_remainder_whole(100_000, [30_050, 30_000], 100) == largest_remainder(
        100_000, [30_050, 30_000])


@given(st.integers(0, 10_000), st.lists(st.integers(0, 5_000), min_size=1, max_size=30))
def test_whole_shares_are_whole_and_sum_exactly(shillings, weights):
    total, owed = shillings * 100, [w * 100 for w in weights]
    if sum(owed) == 0:
        assert largest_remainder_whole(0, owed, 100) == [0] * len(owed)
        return
    total = min(total, sum(owed))
    shares = largest_remainder_whole(total, owed, 100)
    assert sum(shares) == total
    assert all(s % 100 == 0 for s in shares)
    assert all(s <= w for s, w in zip(shares, owed, strict=True))

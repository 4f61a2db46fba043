"""Splitting an amount by weights without losing or creating a unit (pure)."""
from __future__ import annotations

from collections.abc import Sequence


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Shares of `total` proportional to `weights`, summing exactly to `total`.

    Each share is floor(total * w / W); the units left over go one each to the largest
    remainders, ties to the earlier position (callers order parties deterministically).
    When total <= W no share exceeds ceil(total * w / W), so no party gets more than
    its weight.
    """
    if total < 0:
        raise ValueError("total must not be negative")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    whole = sum(weights)
    if whole == 0:
        if total:
            raise ValueError("cannot split a positive total over zero weights")
        return [0] * len(weights)
    shares = []
    remainders = []
    for index, weight in enumerate(weights):
        share, remainder = divmod(total * weight, whole)
        shares.append(share)
        if remainder:
            remainders.append((-remainder, index))
    left = total - sum(shares)
    remainders.sort()
    for _, index in remainders[:left]:
        shares[index] += 1
    return shares


def largest_remainder_whole(total: int, weights: Sequence[int], unit: int) -> list[int]:
    """`largest_remainder` in whole `unit`s (shillings of 100 cents): every share is a
    whole number of units when `total` and every weight are, as all money made by
    Harambee is (loans, pledges, fees and M-Pesa amounts are whole shillings). When one
    is not (money with cents from before, or from another provider), the split is to
    the minor unit, as exact. No unit is ever lost or created."""
    if unit <= 1 or total % unit or any(w % unit for w in weights):
        return largest_remainder(total, weights)
    return [share * unit for share in largest_remainder(total // unit,
                                                        [w // unit for w in weights])]

"""Four-digit codes a member answers by SMS (`YES 4821`): a lender's pledge, a
guarantor's consent. One member's waiting codes never collide."""
from __future__ import annotations

import secrets

from core.errors import Conflict

CODES = range(1000, 10000)  # four digits, as typed after YES


def new_code(taken: set[str]) -> str:
    """A code none of the lender's waiting pledges has: drawn from the free ones, so it
    never collides and never loops (`loan.max_open_proposals` keeps `taken` small)."""
    if len(taken) < len(CODES) // 2:  # the usual case: a draw is almost never taken
        for _ in range(8):
            code = str(CODES[secrets.randbelow(len(CODES))])
            if code not in taken:
                return code
    free = [str(n) for n in CODES if str(n) not in taken]
    if not free:
        raise Conflict("pledge.no_code")
    return free[secrets.randbelow(len(free))]

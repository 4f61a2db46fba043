"""Numbers people type and read: loan numbers (`L1042`) and dispute case numbers
(`D1004`). Short and typable on a keypad: one letter and digits. The letter of a loan
number is a setting (`loan.number_prefix`); every channel reads loan numbers here."""
from __future__ import annotations

import re
from functools import lru_cache

FIRST = 1000  # numbers start at four digits: row id 1 is L1001
CASE_PREFIX = "D"
DATA_CASE_PREFIX = "P"  # a request about personal data (core/privacy.py)


def loan_number(prefix: str, loan_id: int) -> str:
    return f"{prefix}{FIRST + loan_id}"


def case_number(dispute_id: int) -> str:
    return f"{CASE_PREFIX}{FIRST + dispute_id}"


def data_case_number(request_id: int) -> str:
    return f"{DATA_CASE_PREFIX}{FIRST + request_id}"


@lru_cache(maxsize=8)
def loan_number_pattern(prefix: str) -> re.Pattern[str]:
    """A loan number as people write it: `L1042`, `l1042`, `L-1042`, `#L 1042`, or the
    digits alone; group `digits` holds the number."""
    letter = re.escape(prefix)
    return re.compile(rf"#?\s*(?:(?P<prefix>{letter})\s*-?\s*)?(?P<digits>[0-9]{{1,9}})",
                      re.IGNORECASE | re.ASCII)


def normalise_loan_number(raw: str, prefix: str) -> str | None:
    """`l1042`, `1042`, `#L-1042`, `L01042` -> `L1042`; None when it cannot be one."""
    match = loan_number_pattern(prefix).fullmatch((raw or "").strip())
    if match is None:
        return None
    return f"{prefix}{int(match['digits'])}"

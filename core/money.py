"""Money is an `int` of minor units: parse what people type, format it back.

No floats anywhere: text is read digit by digit into exact integers, so
`1.5k` at scale 100 is exactly 150000 and `0.001` is refused, never rounded.
"""
from __future__ import annotations

import re
from functools import cache, lru_cache

MAX_MINOR = 10**15  # larger amounts are typing mistakes, not loans

INVALID = "amount.invalid"
TOO_PRECISE = "amount.too_precise"
NOT_POSITIVE = "amount.not_positive"
TOO_LARGE = "amount.too_large"

# Ways Kenyans write "shillings" besides the ISO code; `bob` and `/=` `/-` only follow.
_KENYAN_WORDS = ("kshs", "ksh", "shs", "sh")
_MULTIPLIER_DIGITS = {None: 0, "k": 3, "m": 6}


class AmountError(ValueError):
    """An amount could not be read; `key` names the text in core/messages."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@lru_cache(maxsize=8)
def _amount_pattern(currency: str) -> re.Pattern[str]:
    """The amount grammar for one currency, compiled once per currency."""
    words = sorted({currency.lower(), *_KENYAN_WORDS} - {""}, key=len, reverse=True)
    word = "|".join(re.escape(w) for w in words)
    suffix = rf"\ ?(?:{word}|bob)\.?"
    return re.compile(
        rf"""
        (?P<sign>-)?\ ?
        (?:(?:{word})\.?\ ?)?
        (?P<inner_sign>-)?
        (?P<whole>[0-9]{{1,3}}(?P<sep>[,\ ])[0-9]{{3}}(?:(?P=sep)[0-9]{{3}})*|[0-9]*)
        (?:\.(?P<fraction>[0-9]+))?
        (?:{suffix}|\ ?(?P<multiplier>[km])(?:{suffix})?)?
        (?:\ ?/[=-])?
        """,
        re.VERBOSE,
    )


@cache
def _decimals(scale: int) -> int:
    """How many decimal places a scale has (100 -> 2); the scale must be a power of ten."""
    decimals = len(str(scale)) - 1
    if scale < 1 or 10**decimals != scale:
        raise ValueError(f"scale must be a power of ten, not {scale}")
    return decimals


def parse_amount(text: str, *, scale: int = 100, currency: str = "KES") -> int:
    """Minor units for an amount as typed on a phone (`1,500`, `1.5k`, `KSh. 500`, `500/=`).

    Raises AmountError, and nothing else, for any text that is not a positive
    amount of at most MAX_MINOR minor units with no more decimals than `scale` allows.
    """
    decimals = _decimals(scale)
    cleaned = " ".join(text.split())
    if not cleaned.isascii():
        raise AmountError(INVALID)
    match = _amount_pattern(currency).fullmatch(cleaned.lower())
    if match is None or not (match["whole"] or match["fraction"]):
        raise AmountError(INVALID)
    if match["sign"] or match["inner_sign"]:
        raise AmountError(NOT_POSITIVE)
    whole = match["whole"].replace(",", "").replace(" ", "").lstrip("0")
    fraction = (match["fraction"] or "").rstrip("0")
    exponent = decimals + _MULTIPLIER_DIGITS[match["multiplier"]]
    # Checked on digit counts first so a thousand-digit paste never becomes a huge int.
    if len(whole) > len(str(MAX_MINOR)):
        raise AmountError(TOO_LARGE)
    if len(fraction) > exponent:
        raise AmountError(TOO_PRECISE)
    minor = int(whole + fraction.ljust(exponent, "0") or "0")
    if minor == 0:
        raise AmountError(NOT_POSITIVE)
    if minor > MAX_MINOR:
        raise AmountError(TOO_LARGE)
    return minor


def format_amount(minor: int, *, currency: str = "KES", scale: int = 100) -> str:
    """Amount as a person reads it in an SMS: `KES 1,500`, `KES 1,500.50`, `-KES 20`."""
    decimals = _decimals(scale)
    whole, cents = divmod(abs(minor), scale)
    number = f"{whole:,}" + (f".{cents:0{decimals}d}" if cents else "")
    sign = "-" if minor < 0 else ""
    return f"{sign}{currency} {number}" if currency else f"{sign}{number}"


def to_minor(major: int, scale: int = 100) -> int:
    """Minor units for a whole number of major units (500 shillings -> 50000 cents)."""
    _decimals(scale)
    return major * scale

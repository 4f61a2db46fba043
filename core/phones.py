"""Phone numbers: anything a person types becomes E.164 (`+254712345678`)."""
from __future__ import annotations

from functools import lru_cache

import phonenumbers

from core.errors import InvalidInput


def normalise(raw: str, region: str = "KE") -> str:
    """E.164 for a number typed any common way; raises InvalidInput("phone.invalid")."""
    text = (raw or "").strip()
    if not text or len(text) > 32:
        raise InvalidInput("phone.invalid")
    e164 = _e164(text, region)
    if e164 is None:
        raise InvalidInput("phone.invalid")
    return e164


# Every request normalises its caller's number, and parsing costs about 0.1 ms: the
# same few thousand numbers are remembered (at most 32 characters each, so the cache
# stays under a few MB).
@lru_cache(maxsize=16_384)
def _e164(text: str, region: str) -> str | None:
    """E.164 for stripped, non-empty `text`, or None when it is not a valid number."""
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text[0].isdigit() and not text.startswith("0"):
        # 254712... typed without the plus: try it as international first.
        try:
            candidate = phonenumbers.parse("+" + text, None)
            if phonenumbers.is_valid_number(candidate):
                return phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            pass
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_normalise(raw: str, region: str = "KE") -> str | None:
    """E.164, or None when `raw` is not a phone number."""
    try:
        return normalise(raw, region)
    except InvalidInput:
        return None


def local(e164: str, region: str = "KE") -> str:
    """A number as people dial it at home: `+254712345678` -> `0712 345678`."""
    try:
        number = phonenumbers.parse(e164, region)
    except phonenumbers.NumberParseException:
        return e164
    if phonenumbers.region_code_for_number(number) != region:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def masked(e164: str) -> str:
    """For logs at info level: `+2547****5678`. The first five characters and the last
    four show only when at least four between them are hidden (13 characters, as every
    East African number has); anything shorter, a number typed badly or a short code,
    shows as `****`: `0712345678` would otherwise show all but one digit."""
    if len(e164) < 5 + 4 + 4:
        return "****"
    return e164[:5] + "****" + e164[-4:]

"""The catalogue: both languages say everything, with the same placeholders, in GSM-7."""
from __future__ import annotations

import pytest

from core.messages import CATALOG, is_gsm7, placeholders, sms_parts, text


def test_both_languages_have_the_same_keys():
    assert set(CATALOG["en"]) == set(CATALOG["sw"])


@pytest.mark.parametrize("key", sorted(CATALOG["en"]))
def test_placeholders_match_and_text_is_gsm7(key):
    en, sw = CATALOG["en"][key], CATALOG["sw"][key]
    assert placeholders(en) == placeholders(sw), key
    assert is_gsm7(en) and is_gsm7(sw), key


def test_text_fills_placeholders_and_falls_back_to_english():
    assert text("loan.not_found", "sw", number="L1042") == "Hakuna mkopo L1042."
    assert text("loan.not_found", "fr", number="L1042") == "No loan L1042."


def test_sms_parts_counts_gsm7_and_unicode():
    assert sms_parts("a" * 160) == 1
    assert sms_parts("a" * 161) == 2
    assert sms_parts("“quoted”") == 1 and not is_gsm7("“quoted”")
    assert sms_parts("é" * 70) == 1 and sms_parts("ł" * 71) == 2


def test_every_error_key_core_raises_has_a_text():
    import re
    from pathlib import Path

    raised = set()
    pattern = re.compile(r'(?:NotFound|NotAllowed|InvalidInput|Conflict|InsufficientFunds|PinLocked'
                         r'|WrongPin|DomainError)\(\s*"([a-z_]+\.[a-z_]+)"')
    for path in (Path(__file__).resolve().parents[2] / "core").rglob("*.py"):
        raised.update(pattern.findall(path.read_text()))
    assert raised, "the pattern found nothing: it is broken"
    missing = sorted(key for key in raised if key not in CATALOG["en"])
    assert missing == []


def test_a_missing_key_never_raises_in_front_of_a_person():
    assert text("no.such.key", "sw") == CATALOG["sw"]["error.generic"]
    assert text("loan.not_found", "en") == CATALOG["en"]["error.generic"]  # placeholder missing

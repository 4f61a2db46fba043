"""The texts of groups, guarantees, choices and pauses: every SMS fits one message
(160 GSM-7 characters) in both languages with the longest group name, village, amount
and loan number the product allows and a first name of 20 letters (a longer one-word
name makes a second part, never a cut text), and none of them shames a borrower."""
from __future__ import annotations

import re

import pytest

from core.messages import CATALOG, is_gsm7, text
from core.messages.en import trust as en_trust

LONGEST = {  # the longest value each placeholder can carry
    "agent": "Wanjiruachiengmwangiotienokamaubarakazaw"[:20],
    "borrower": "Wanjiruachiengmwangiotienokamaubarakazaw"[:20],
    "name": "Wanjiruachiengmwangiotienokamaubarakazaw"[:20],
    "group": "Akina Mama Wa Nyalenda Umoja Na Maendele",
    "village": "Kisumu Ndogo Mwembe Tayari Gro",
    "amount": "Ksh 50,000", "pledged": "Ksh 49,999", "next_amount": "Ksh 52,500",
    "loan": "L1000001", "service_code": "*384*123#", "percent": "99", "hours": "48",
    "days": "7", "deadline": "05/12/2026", "next_due": "05/12/2026", "last_due": "05/12/2026",
    "paybill": "2472470", "code": "4821", "weeks": "2 weeks", "reason": "biashara imedorora",
}
SMS = sorted(key for key in en_trust.TEXTS if key.startswith("sms."))
# Words that must never reach a borrower: we write of a loan, never of a person's shame.
NEVER = {"en": ["default", "defaulter", "failed", "failure", "bad", "shame", "cheat", "liar",
                "blacklist", "debtor"],
         "sw": ["mdaiwa sugu", "aibu", "tapeli", "mwongo", "mwizi", "ameshindwa", "mbaya"]}


@pytest.mark.parametrize("lang", ["en", "sw"])
@pytest.mark.parametrize("key", SMS)
def test_every_sms_fits_one_message_and_is_gsm7(key, lang):
    said = text(key, lang, **LONGEST)
    assert is_gsm7(said), said
    assert len(said) <= 160, f"{key} ({lang}): {len(said)}\n{said}"


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_no_text_of_ours_shames_anyone(lang):
    ours = [v for k, v in CATALOG[lang].items() if k in en_trust.TEXTS]
    for said in ours:
        for word in NEVER[lang]:
            assert not re.search(rf"\b{word}\b", said, re.IGNORECASE), (word, said)

"""Outgoing SMS, pure: every template fits one SMS part with realistic longest values;
reminder kinds and quiet hours; bulk grouping; AT's status codes."""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from core.config import load_settings
from core.delivery import Claimed, backoff
from core.messages import CATALOG, placeholders, sms_parts
from core.reminders import kind_for, kinds, quiet_until
from runtime.sms_gateways import INVALID, RETRY, SENT, _recipients
from workers.duties import BULK_MAX, _bulk

# The longest values a person realistically sees in each placeholder.
LONGEST = {
    "name": "Wanjiku", "borrower": "Nyambura", "agent": "Grace Wanjiku Mwangi",
    "amount": "Ksh 52,500.50", "available": "Ksh 100,000.50", "held": "Ksh 100,000.50",
    "balance": "Ksh 100,000.50", "outstanding": "Ksh 52,500.50", "next_amount": "Ksh 13,125.50",
    "installment": "Ksh 13,125.50", "limit": "Ksh 100,000", "received": "Ksh 52,500.50",
    "entitled": "Ksh 52,500.50", "refund": "Ksh 9,999.50", "open": "Ksh 49,950",
    "min": "Ksh 500", "max": "Ksh 50,000", "loan": "L100999", "code": "4821", "hours": "24",
    "percent": "100", "deadline": "28/02/2027", "due": "28/02/2027", "next_due": "28/02/2027",
    "first_due": "28/02/2027", "paybill": "247247", "service_code": "*384*123#",
    "period": "2 weeks", "case": "D10999", "pledges": "12", "reference": "0712345678",
    "state": "umefungwa bila kufadhiliwa", "status": "confirmed", "purpose": "School fees",
    "suggestion": "MALALAMIKO", "fee": "5", "sign": "- Grace, wakala wako wa Harambee",
    "items": "L100999 Ksh 49,950 open (School fees); L100998 Ksh 9,950 open (Transport)",
    "number": "L100999", "currency": "KES", "tries_left": "2", "until": "14:30", "length": "4",
    "terms": "4, 8, 12", "n": "2", "receipt": "SBK7A1B2C3", "who": "Nyambura",
    "phone": "0712 345678", "support": "+254709000000", "by": "28/02/2027",
    "note": "N" * 80,  # an operator's step on a case: disputes.MAX_SMS_NOTE characters
    # community and data rights (docs/community.md)
    "story": "S" * 80, "tip": "T" * 100, "loans": "99", "lent": "Ksh 999,999",
    "back": "Ksh 999,999", "to_come": "Ksh 999,999", "late": "Ksh 999,999",
    "lost": "Ksh 999,999", "date": "28/02/2027", "left": "Ksh 52,500", "end": "678",
    "payments": "999", "messages": "9999",
    "details": "Wanjiru Achieng Mwangi Otieno Kamau Bara, phone 0712 345678, ID ending 678, "
               "Kisumu Ndogo Mwembe Tayari Gro, English, agent Grace",
    "group": "Akina Mama Wa Nyalenda Umoja Na Maendele",
    "village": "Kisumu Ndogo Mwembe Tayari Gro", "pledged": "Ksh 49,950", "days": "7",
    "last_due": "28/02/2027", "weeks": "2 weeks", "reason": "biashara imedorora",
}
# Replies a member asks for that may take two parts (docs/community.md): a statement and
# what Harambee holds about them.
TWO_PARTS = {"sms.statement", "sms.data_held"}


def outgoing_keys() -> list[str]:
    return sorted(k for k in CATALOG["en"] if k.startswith("sms."))


@pytest.mark.parametrize("lang", ["en", "sw"])
@pytest.mark.parametrize("key", outgoing_keys())
def test_every_outgoing_template_fits_one_sms_part(key, lang):
    template = CATALOG[lang][key]
    missing = placeholders(template) - LONGEST.keys()
    assert not missing, f"add realistic longest values for {sorted(missing)}"
    # a reminder is signed in its own language, by an agent with a long first name
    sign = CATALOG[lang]["sms.signed_agent"].format(agent="Wanjiku")
    filled = template.format(**{**LONGEST, "sign": sign})
    parts = 2 if key in TWO_PARTS else 1
    assert sms_parts(filled) <= parts, f"{key} ({lang}) is {len(filled)} characters: {filled}"


def test_the_check_catches_a_long_text():
    assert sms_parts(CATALOG["en"]["sms.reminder_late"].format(**{**LONGEST, "name": "W" * 60})) > 1


def test_reminder_kinds_follow_settings():
    settings = load_settings(env={})
    schedule = kinds(settings)
    assert schedule == [("before", -3), ("due", 0), ("late1", 1), ("late3", 3), ("late7", 7)]
    assert [kind_for(d, schedule) for d in range(-5, 10)] == [
        None, None, ("before", -3), ("before", -3), None, ("due", 0), ("late1", 1),
        ("late1", 1), ("late3", 3), ("late3", 3), None, None, ("late7", 7), ("late7", 7), None]


@pytest.mark.parametrize(("hour", "minute", "held_until"), [
    (19, 59, None), (20, 0, (3, 7)), (23, 30, (3, 7)), (0, 15, (2, 7)), (6, 59, (2, 7)),
    (7, 0, None), (12, 0, None)])
def test_quiet_hours_in_local_time(hour, minute, held_until):
    settings = load_settings(env={})
    local = datetime(2026, 3, 2, hour, minute, tzinfo=settings.zone)
    expected = (datetime(2026, 3, held_until[0], held_until[1], tzinfo=settings.zone)
                if held_until else None)
    assert quiet_until(settings, local.astimezone(UTC)) == expected


def test_quiet_hours_within_one_day_and_none():
    daytime = load_settings(env={}, overrides={"reminders": {"quiet_start": "12:00",
                                                             "quiet_end": "14:00"}})
    noon = datetime(2026, 3, 2, 12, 30, tzinfo=daytime.zone)
    assert quiet_until(daytime, noon) == datetime(2026, 3, 2, 14, 0, tzinfo=daytime.zone)
    never = load_settings(env={}, overrides={"reminders": {"quiet_start": "20:00",
                                                           "quiet_end": "20:00"}})
    assert never.reminders.quiet_end == time(20, 0) and quiet_until(never, noon) is None


def test_backoff_doubles_up_to_an_hour():
    assert [backoff(n).total_seconds() / 60 for n in (1, 2, 3, 4, 7, 20)] == [
        1, 2, 4, 8, 60, 60]


def test_backoff_starts_from_the_configured_wait():
    five = timedelta(seconds=5)
    assert [backoff(n, five).total_seconds() for n in (1, 2, 3, 11, 20)] == [
        5, 10, 20, 3600, 3600]


def test_bulk_groups_same_text_with_distinct_phones():
    def row(i: int, phone: str, text: str) -> Claimed:
        return Claimed(i, phone, text, None, 1)

    rows = [row(1, "+1", "a"), row(2, "+2", "a"), row(3, "+1", "a"), row(4, "+3", "b")]
    assert [(t, [r.id for r in batch]) for t, batch in _bulk(rows)] == [
        ("a", [1, 2]), ("a", [3]), ("b", [4])]
    many = [row(i, f"+{i}", "same") for i in range(BULK_MAX + 1)]
    assert [len(batch) for _, batch in _bulk(many)] == [BULK_MAX, 1]


def test_africas_talking_recipient_codes():
    answer = {"SMSMessageData": {"Recipients": [
        {"statusCode": 101, "number": "+1", "status": "Success", "cost": "KES 0.8",
         "messageId": "ATXid_1"},
        {"statusCode": 405, "number": "+2", "status": "InsufficientBalance", "cost": "0",
         "messageId": "None"},
        {"statusCode": 406, "number": "+3", "status": "UserInBlacklist"},
        {"statusCode": "bogus", "number": "+4"}]}}
    outcomes = _recipients(answer, ["+1", "+2", "+3", "+4", "+5"])
    assert {p: o.state for p, o in outcomes.items()} == {
        "+1": SENT, "+2": RETRY, "+3": INVALID, "+4": RETRY, "+5": RETRY}
    assert outcomes["+1"].message_id == "ATXid_1" and outcomes["+2"].message_id is None
    assert {o.state for o in _recipients("Not JSON", ["+1"]).values()} == {RETRY}

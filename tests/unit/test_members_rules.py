"""Member rules that need no database: validators, PIN hashing, the credit ladder."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.config import load_settings
from core.errors import InvalidInput
from core.members import (
    _pin_matches,
    after_loan_repaid,
    clean_language,
    clean_name,
    clean_national_id,
    clean_roles,
    freeze_limit,
    hash_pin,
    validate_pin,
)
from core.models import Member


@pytest.fixture(scope="module")
def config():
    return load_settings(env={}, overrides={
        "pin": {"hash_cost": 8},
        "credit": {"first_loan_limit": 5_000, "raise_factor": "1.5", "cap": 12_000}})


def borrower(config) -> Member:
    return Member(phone="+254712345678", name="Amina", roles="borrower",
                  credit_limit=config.minor(config.credit.first_loan_limit), limit_frozen=False,
                  loans_repaid=0, loans_repaid_on_time=0,
                  created_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_ladder_raises_by_the_factor_up_to_the_cap(config):
    member = borrower(config)
    limits = []
    for _ in range(4):
        after_loan_repaid(member, config, on_time=True)
        limits.append(member.credit_limit)
    assert limits == [750_000, 1_125_000, 1_200_000, 1_200_000]
    assert member.loans_repaid == member.loans_repaid_on_time == 4


def test_a_late_loan_freezes_the_limit_and_an_on_time_one_thaws_it(config):
    member = borrower(config)
    after_loan_repaid(member, config, on_time=False)
    assert member.limit_frozen and member.credit_limit == 500_000
    assert (member.loans_repaid, member.loans_repaid_on_time) == (1, 0)
    after_loan_repaid(member, config, on_time=True)
    assert not member.limit_frozen and member.credit_limit == 500_000  # thawed, not raised
    after_loan_repaid(member, config, on_time=True)
    assert member.credit_limit == 750_000


def test_arrears_freeze_stops_the_next_raise(config):
    member = borrower(config)
    freeze_limit(member)
    after_loan_repaid(member, config, on_time=True)
    assert member.credit_limit == 500_000


def test_pin_hash_is_salted_and_checks(config):
    first, second = hash_pin("2580", config), hash_pin("2580", config)
    assert first != second and "2580" not in first
    assert _pin_matches("2580", first) and _pin_matches("2580", second)
    assert not _pin_matches("2581", first)
    assert not _pin_matches("2580", "garbage")


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", "1234", "0000", "7777", "١٢٣٤"])
def test_weak_or_malformed_pins_are_refused(config, pin):
    with pytest.raises(InvalidInput):
        validate_pin(pin, config)


def test_validators_clean_what_people_type():
    assert clean_name("  amina   otieno ") == "Amina Otieno"
    assert clean_national_id(" 1234 5678 ") == "12345678"
    assert clean_language(" SW ") == "sw"
    assert clean_roles("lender, borrower,lender") == "borrower,lender"
    for bad in (lambda: clean_name("1"), lambda: clean_national_id("12"),
                lambda: clean_language("fr"), lambda: clean_roles("king"),
                lambda: clean_roles("")):
        with pytest.raises(InvalidInput):
            bad()

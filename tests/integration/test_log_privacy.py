"""Logs at info level and error messages carry no phone numbers, SMS texts or codes."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from runtime.sms_gateways import ConsoleGateway


def test_a_database_error_does_not_carry_the_statements_values(world):
    member = world.member("Amina Otieno", roles="borrower", phone="+254711222333")
    with world.uow() as uow, pytest.raises(IntegrityError) as raised:
        uow.session.execute(text(
            "INSERT INTO members (phone, name, national_id, language, roles, status, "
            "credit_limit, pin_failures, limit_frozen, loans_repaid, loans_repaid_on_time, "
            "tips_opt_out, sms_unreachable, created_at) VALUES (:phone, :name, :nid, 'en', "
            "'borrower', 'pending', 0, 0, false, 0, 0, false, false, :now)"),
            {"phone": member.phone, "name": "Secret Name", "nid": "99999999",
             "now": world.now})
    message = str(raised.value)
    assert "+254711222333" not in message and "Secret Name" not in message
    assert "hidden due to hide_parameters" in message


def test_the_console_gateway_logs_neither_the_number_nor_the_text(caplog):
    caplog.set_level(logging.INFO, logger="runtime.sms_gateways")
    ConsoleGateway().send("Your pledge code is 4821. Reply YES 4821.", ["+254711222333"])
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "SMS to" in logged
    assert "+254711222333" not in logged and "4821" not in logged

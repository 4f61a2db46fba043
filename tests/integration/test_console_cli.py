"""`harambee operators add`, and the demo's operator and console world."""
from __future__ import annotations

import re

import pyotp
from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from core import operators
from core.models import Dispute, Operator, Payment, PaymentKind


def run(settings, *args, stdin=None):
    env = {"DATABASE_URL": settings.database.url, "REDIS_URL": settings.redis.url,
           "HARAMBEE_INSTANCE": settings.app.instance_dir}
    return CliRunner().invoke(main, list(args), env=env, input=stdin)


def test_adding_a_finance_operator_prints_its_totp_secret_once(services):
    result = run(services.settings, "operators", "add", "Wanjiku@Harambee.test", "--role",
                 "finance", stdin="a long enough password\na long enough password\n")
    assert result.exit_code == 0, result.output
    secret = re.search(r"TOTP secret: ([A-Z2-7]+)", result.output).group(1)
    assert "otpauth://totp/" in result.output
    with services.uow() as uow:
        operator = uow.session.scalar(select(Operator))
        assert operator.email == "wanjiku@harambee.test" and operator.role == "finance"
        assert operator.totp_secret == secret
        assert operator.password_hash.startswith("$argon2id$")
    logged_in = operators.authenticate(services.uow(), email="wanjiku@harambee.test",
                                       password="a long enough password",
                                       code=pyotp.TOTP(secret).at(services.now()),
                                       now=services.now())
    assert logged_in.email == "wanjiku@harambee.test"


def test_a_support_operator_has_no_second_factor_and_bad_input_is_refused(services):
    result = run(services.settings, "operators", "add", "help@harambee.test", "--role",
                 "support", "--password", "a long enough password")
    assert result.exit_code == 0 and "TOTP" not in result.output
    again = run(services.settings, "operators", "add", "HELP@harambee.test", "--role",
                "support", "--password", "a long enough password")
    assert again.exit_code != 0 and "already exists" in again.output
    short = run(services.settings, "operators", "add", "new@harambee.test", "--role", "admin",
                "--password", "short")
    assert short.exit_code != 0 and "at least 12 characters" in short.output
    bad = run(services.settings, "operators", "add", "not-an-email", "--role", "admin",
              "--password", "a long enough password")
    assert bad.exit_code != 0 and "not an email address" in bad.output


def test_the_demo_makes_its_operator_once_and_a_world_with_console_work(services):
    from cli.demo import DEMO_OPERATOR, DEMO_PASSWORD, _demo_operator
    from cli.demo_world import seed

    assert seed(services, services.now())
    email, password, secret = _demo_operator(services)
    assert (email, password) == (DEMO_OPERATOR, DEMO_PASSWORD) and len(secret) == 32
    assert _demo_operator(services) == (email, password, secret)  # a second run: the same
    with services.uow() as uow:
        assert uow.session.scalar(select(Dispute.status)) == "open"
        assert uow.session.scalar(select(Payment.id).where(
            Payment.kind == PaymentKind.UNMATCHED)) is not None

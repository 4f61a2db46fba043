"""`harambee operators add EMAIL --role support|finance|admin`: console accounts."""
from __future__ import annotations

from datetime import UTC, datetime

import click

from core.config import ConfigError, load_settings


@click.group()
def operators() -> None:
    """Operator accounts for the web console (/console)."""


@operators.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["support", "finance", "admin"]))
@click.option("--password", envvar="HARAMBEE_OPERATOR_PASSWORD", default=None,
              help="The first password (12+ characters); asked for when not given "
                   "(or from HARAMBEE_OPERATOR_PASSWORD).")
@click.option("--totp/--no-totp", default=None,
              help="A TOTP second factor (always on for finance and admin).")
def operators_add(email: str, role: str, password: str | None, totp: bool | None) -> None:
    """Create an operator; print the TOTP secret and its otpauth:// URI once (finance
    and admin always have one)."""
    from core import operators as use_cases
    from core.db import Database, UnitOfWork
    from core.errors import DomainError
    from core.messages import text

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    database = Database(settings)
    try:
        made = use_cases.add_operator(UnitOfWork(database), email=email, role=role,
                                      password=password, now=datetime.now(UTC), totp=totp)
    except DomainError as exc:
        raise click.ClickException(text(exc.key, "en", **exc.params)) from None
    finally:
        database.dispose()
    click.echo(f"operator {made.operator.email} ({made.operator.role}) added")
    if made.totp_secret:
        click.echo(f"TOTP secret: {made.totp_secret}")
        click.echo(f"provisioning URI: {use_cases.provisioning_uri(made.operator)}")

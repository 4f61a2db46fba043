"""`harambee`: the one console script (demo, serve, db, check, members, operators, and the
background and phone commands defined beside the code they run)."""
from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime

import click

from cli.background import cron, outbox_command, tick, worker
from cli.community import data_requests, stories
from cli.demo import demo, fake_daraja
from cli.operators import operators
from cli.phone import phone
from cli.reconcile import reconcile
from core.config import ConfigError, Settings, load_settings, production_gaps
from core.messages import LANGUAGES

log = logging.getLogger("harambee")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Harambee: peer-to-peer microlending over USSD and SMS."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (creates the SQLite file in instance/ by default)."""
    from core.migrate import upgrade

    settings = _settings()
    upgrade(settings)
    click.echo(f"database at head: {settings.database_url.split('@')[-1]}")


@main.command()
def check() -> None:
    """Verify the ledger invariants; exit 1 naming each broken one."""
    from core import checks, confirmations
    from core.db import Database, UnitOfWork

    database = Database(_settings())
    now = datetime.now(UTC)
    violations = checks.check(UnitOfWork(database), now)
    waiting = confirmations.waiting(UnitOfWork(database))
    database.dispose()
    if violations:
        for violation in violations:
            click.echo(str(violation), err=True)
        sys.exit(1)
    click.echo(f"ledger ok: all {len(checks.INVARIANTS)} invariants hold")
    if waiting.count and waiting.oldest is not None:
        click.echo(f"{waiting.count} paybill confirmations on their way to the ledger, the "
                   f"oldest {int((now - waiting.oldest).total_seconds())} s old")


@main.group()
def members() -> None:
    """Operators' member commands."""


@members.command("add")
@click.argument("phone")
@click.option("--name", required=True)
@click.option("--role", "roles", required=True, multiple=True,
              type=click.Choice(["borrower", "lender", "agent", "admin"]))
@click.option("--national-id", default=None)
@click.option("--language", default="en", type=click.Choice(LANGUAGES))
@click.option("--pin", default=None, help="Initial PIN (else the member sets it by USSD).")
def members_add(phone: str, name: str, roles: tuple[str, ...], national_id: str | None,
                language: str, pin: str | None) -> None:
    """Register a member as an operator (verified, terms to be accepted by phone)."""
    from core import members as use_cases
    from core.db import Database, UnitOfWork
    from core.errors import DomainError
    from core.messages import text

    settings = _settings()
    database = Database(settings)
    try:
        reg = use_cases.register(UnitOfWork(database), phone=phone, name=name,
                                 national_id=national_id, language=language, roles=list(roles),
                                 pin=pin, by_operator=True, now=datetime.now(UTC))
        click.echo(f"member {reg.member.id} {reg.member.phone} {reg.member.roles}")
    except DomainError as exc:
        raise click.ClickException(text(exc.key, "en", **exc.params)) from None
    finally:
        database.dispose()


@main.group()
def pause() -> None:
    """Hardship pauses waiting for an operator (the console's Pauses page shows them too;
    it calls the same `pauses.decide`, with the operator audited)."""


@pause.command("list")
def pause_list() -> None:
    """Every pause request waiting for an answer."""
    from core import pauses
    from core.db import Database, UnitOfWork

    database = Database(_settings())
    try:
        for found in pauses.waiting(UnitOfWork(database)):
            click.echo(f"{found.id} {found.loan} {found.name} {found.weeks}w {found.reason}")
    finally:
        database.dispose()


@pause.command("decide")
@click.argument("pause_id", type=int)
@click.option("--approve/--decline", required=True)
def pause_decide(pause_id: int, approve: bool) -> None:
    """Approve or decline a pause as an operator: the schedule moves on approval."""
    from core import pauses
    from core.db import Database, UnitOfWork
    from core.errors import DomainError
    from core.messages import text

    database = Database(_settings())
    try:
        done = pauses.decide(UnitOfWork(database), pause_id=pause_id, approve=approve,
                             now=datetime.now(UTC))
        click.echo(f"pause {done.id} {done.status}")
    except DomainError as exc:
        raise click.ClickException(text(exc.key, "en", **exc.params)) from None
    finally:
        database.dispose()


@main.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=int(os.environ.get("HARAMBEE_PORT", "8000")), type=int,
              help="Default: HARAMBEE_PORT, else 8000.")
@click.option("--workers", default=2, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Run the web service under gunicorn."""
    gaps = production_gaps(_settings())  # fail early, in one line, on a bad config
    if gaps:
        raise click.ClickException("production refuses to start until these are set: "
                                   + "; ".join(gaps))
    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}",
                               "--workers", str(workers), "--access-logfile", "-",
                               # %(U)s is the path without the query: keeps ?key= out of logs
                               "--access-logformat", '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)s',
                               "--timeout", "30", "wsgi:app"])


for _command in (worker, cron, tick, outbox_command, phone, demo, fake_daraja, reconcile,
                 stories, data_requests, operators):
    main.add_command(_command)


if __name__ == "__main__":
    main()

"""Finding the database a command should read: the commands that only look (`outbox`,
`phone --sms`) say in one line what to set when run away from the demo's instance,
rather than making an empty database and failing deep inside SQLAlchemy."""
from __future__ import annotations

import click
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from core.config import Settings
from core.db import Database

HINT = ("run it in the folder where `make demo` runs, or set HARAMBEE_INSTANCE to the "
        "demo's instance folder (or DATABASE_URL)")


def database_or_hint(settings: Settings) -> Database:
    """The configured database, once it is known to hold Harambee's tables."""
    if not settings.database.url:
        path = settings.instance_path / "harambee.db"
        if not path.exists():
            raise click.ClickException(f"no Harambee database at {path}: {HINT}")
    database = Database(settings)
    try:
        with database.engine.connect() as conn:
            ready = inspect(conn).has_table("outbox")
    except SQLAlchemyError as exc:
        database.dispose()
        raise click.ClickException(f"cannot open the database ({type(exc).__name__}): "
                                   f"{HINT}") from None
    if not ready:
        database.dispose()
        where = settings.database_url.split("@")[-1]
        raise click.ClickException(f"{where} has no Harambee tables yet: {HINT}, or run "
                                   "`harambee db upgrade` to start afresh")
    return database

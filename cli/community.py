"""Operators' commands for stories and data-rights cases (docs/community.md):
`harambee stories list/approve/reject` and `harambee data list/close/erase`.

Each command calls the same core use case the operator console calls
(`core.stories.approve`, `core.privacy.erase`, ...; console/community.py): the
console adds screens and an audit row, not rules."""
from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click

from cli.background import _moment
from core.config import ConfigError, load_settings
from core.db import Database, UnitOfWork
from core.errors import DomainError
from core.messages import text
from core.models import DataRequestStatus, StoryStatus


@contextmanager
def _uow() -> Iterator[Callable[[], UnitOfWork]]:
    """A unit-of-work factory on the configured database; a refusal becomes a plain
    error in English."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    database = Database(settings)
    try:
        yield lambda: UnitOfWork(database)
    except DomainError as exc:
        raise click.ClickException(text(exc.key, "en", **exc.params)) from None
    finally:
        database.dispose()


def _operator(value: str | None) -> str:
    return value or getpass.getuser()


def _now() -> datetime:
    return datetime.now(UTC)


_by = click.option("--by", "operator", default=None,
                   help="Who decides (recorded); the login name by default.")


@click.group()
def stories() -> None:
    """Borrowers' stories: read, approve (it goes out by SMS) or reject."""


@stories.command("list")
@click.option("--status", type=click.Choice([s.value for s in StoryStatus] + ["all"]),
              default=StoryStatus.PENDING.value, show_default=True)
def stories_list(status: str) -> None:
    """Stories, oldest first."""
    from core import stories as use_cases

    with _uow() as uow:
        found = use_cases.list_stories(uow(), None if status == "all" else StoryStatus(status))
    if not found:
        click.echo("no stories")
    for story in found:
        click.echo(f"{story.id}\t{story.status}\t{story.loan}\t{story.borrower}\t"
                   f"{story.created_at:%Y-%m-%d %H:%M}\t{story.text}")


@stories.command("approve")
@click.argument("story_id", type=int)
@_by
def stories_approve(story_id: int, operator: str | None) -> None:
    """Approve a story: it goes to the loan's lenders and to members who want tips."""
    from core import stories as use_cases

    with _uow() as uow:
        shared = use_cases.approve(uow(), story_id=story_id, operator=_operator(operator),
                                   now=_now())
        # The members who want stories: here, a batch at a time (the `share_stories`
        # duty finishes the job if this is stopped midway).
        members = use_cases.share_with_members(uow(), story_id, _now())
    click.echo(f"story {story_id} approved: {shared.lenders} lenders and "
               f"{members} members will get it")


@stories.command("reject")
@click.argument("story_id", type=int)
@click.option("--reason", required=True, help="For the record; the borrower is not told it.")
@_by
def stories_reject(story_id: int, reason: str, operator: str | None) -> None:
    """Turn a story down; the borrower is thanked and invited to send another."""
    from core import stories as use_cases

    with _uow() as uow:
        use_cases.reject(uow(), story_id=story_id, operator=_operator(operator), reason=reason,
                         now=_now())
    click.echo(f"story {story_id} rejected")


@click.group("data")
def data_requests() -> None:
    """Members' requests to correct or erase their data (7 days to answer)."""


@data_requests.command("list")
@click.option("--status", type=click.Choice([s.value for s in DataRequestStatus] + ["all"]),
              default=DataRequestStatus.OPEN.value, show_default=True)
@click.option("--now", "moment", default=None, help="ISO time to judge OVERDUE as of.")
def data_list(status: str, moment: str | None) -> None:
    """Cases, soonest due first; OVERDUE marks an open case past its 7 days."""
    from core import privacy

    with _uow() as uow:
        found = privacy.list_requests(uow(), _moment(moment) if moment else _now(),
                                      status=None if status == "all"
                                      else DataRequestStatus(status))
    if not found:
        click.echo("no requests")
    for case in found:
        late = "\tOVERDUE" if case.overdue else ""
        click.echo(f"{case.number}\t{case.kind}\t{case.status}\tmember {case.member_id}\t"
                   f"{case.member}\tdue {case.due_at:%Y-%m-%d}{late}\t{case.text or ''}")


@data_requests.command("close")
@click.argument("case")
@click.option("--done/--refused", "done", required=True,
              help="The correction was made, or the request is refused.")
@click.option("--note", required=True, help="What was done, or why not (for the record).")
@_by
def data_close(case: str, done: bool, note: str, operator: str | None) -> None:
    """Close a correction (after fixing the details) or refuse a request."""
    from core import privacy

    with _uow() as uow:
        request = privacy.close_request(uow(), number=case, operator=_operator(operator),
                                        note=note, done=done, now=_now())
    click.echo(f"{request.number} {request.status}; the member is told by SMS")


@data_requests.command("erase")
@click.argument("case")
@_by
def data_erase(case: str, operator: str | None) -> None:
    """Do an erasure: anonymise the member, keep the ledger (refused while they owe,
    are owed or hold money: the reason is printed and the case stays open)."""
    from core import privacy

    with _uow() as uow:
        request = privacy.erase(uow(), number=case, operator=_operator(operator), now=_now())
    click.echo(f"{request.number} done: member {request.member_id} erased; the ledger is kept")



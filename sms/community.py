"""SMS commands for the community and data rights (docs/community.md): STORY, TIPS,
THANKS, PORTFOLIO, STATEMENT and DATA. One function per command, as in handlers.py."""
from __future__ import annotations

from collections.abc import Callable

from core import privacy, queries, reputation, stories, tips
from core.messages import format_date, sms_parts, text
from core.models import OWING, DataRequestKind
from core.phones import local
from sms.context import Context, Reply
from sms.parser import Command

STATEMENT_PARTS = 2  # a statement may take two SMS parts; the rest is on USSD
STATEMENT_LOANS = 5


def _story(ctx: Context, command: Command) -> Reply:
    assert ctx.member is not None and command.text
    stories.submit(ctx.uow, member_id=ctx.member.id, text=command.text, now=ctx.now,
                   request_key=f"sms:{ctx.inbound_id}")
    return Reply("sms.story_received")


def _tips(ctx: Context, command: Command) -> Reply:
    assert ctx.member is not None and command.choice
    wanted = command.choice == "on"
    tips.set_wanted(ctx.uow, ctx.member.id, wanted=wanted)
    return Reply("sms.tips_on" if wanted else "sms.tips_off")


def _thanks(ctx: Context, command: Command) -> Reply:
    assert ctx.member is not None and command.loan
    new = stories.thank(ctx.uow, lender_id=ctx.member.id, number=command.loan, now=ctx.now)
    return Reply("sms.thanks_sent" if new else "sms.thanks_already", {"loan": command.loan})


def _portfolio(ctx: Context, command: Command) -> Reply:
    assert ctx.member is not None
    mine = reputation.portfolio(ctx.uow, ctx.member.id)
    if not mine.loans:
        return Reply("sms.portfolio_none")
    return Reply("sms.portfolio", {
        "loans": mine.loans, "lent": ctx.fmt(mine.lent), "back": ctx.fmt(mine.got_back),
        "late": ctx.fmt(mine.late), "lost": ctx.fmt(mine.lost),
        "to_come": ctx.fmt(mine.to_come)})


def _statement(ctx: Context, command: Command) -> Reply:
    """The wallet, then the member's loans newest first, as many whole as fit in
    STATEMENT_PARTS SMS parts."""
    assert ctx.member is not None
    settings = ctx.uow.settings
    account = queries.account(ctx.uow, ctx.member.id, ctx.now)
    loans = queries.loans_of(ctx.uow, ctx.member.id, ctx.now, limit=STATEMENT_LOANS)
    values = {"date": format_date(ctx.now.astimezone(settings.zone)),
              "balance": ctx.fmt(account.wallet_balance), "held": ctx.fmt(account.held)}
    if not loans:
        return Reply("sms.statement_no_loans", values)
    items: list[str] = []
    for view in loans:
        state = text(f"loan_state.{view.status}", ctx.language)
        item = (text("sms.statement_owing", ctx.language, loan=view.number,
                     amount=ctx.fmt(view.amount), state=state, left=ctx.fmt(view.outstanding))
                if view.status in OWING else
                text("sms.statement_loan", ctx.language, loan=view.number,
                     amount=ctx.fmt(view.amount), state=state))
        whole = text("sms.statement", ctx.language, items="; ".join([*items, item]), **values)
        if items and sms_parts(whole) > STATEMENT_PARTS:
            break
        items.append(item)
    return Reply("sms.statement", {**values, "items": "; ".join(items)})


def _data(ctx: Context, command: Command) -> Reply | None:
    assert ctx.member is not None
    if command.choice is None:
        return _data_held(ctx)
    kind = DataRequestKind.CORRECT if command.choice == "fix" else DataRequestKind.ERASE
    privacy.open_request(ctx.uow, member_id=ctx.member.id, kind=kind, text=command.text,
                         now=ctx.now, request_key=f"sms:{ctx.inbound_id}")
    return None  # core wrote the acknowledgement with the case number and its date


def _data_held(ctx: Context) -> Reply:
    assert ctx.member is not None
    held = privacy.data_held(ctx.uow, ctx.member.id)
    lang = ctx.language
    region = ctx.uow.settings.app.default_region
    details = [held.name, text("sms.data_phone", lang, phone=local(held.phone, region))]
    if held.national_id:
        details.append(text("sms.data_id", lang, end=held.national_id[-3:]))
    if held.place:
        details.append(held.place)
    details.append(text("ussd.lang.name", held.language))
    if held.agent:
        details.append(text("sms.data_agent", lang, agent=held.agent))
    return Reply("sms.data_held", {"details": ", ".join(details), "loans": held.loans,
                                   "pledges": held.pledges, "payments": held.payments,
                                   "messages": held.messages})


COMMANDS: dict[str, Callable[[Context, Command], Reply | None]] = {
    "story": _story, "tips": _tips, "thanks": _thanks, "portfolio": _portfolio,
    "statement": _statement, "data": _data,
}

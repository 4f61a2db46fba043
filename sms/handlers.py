"""Answer a stored incoming SMS: parse it, call one core use case, say what to reply.

`core.inbox.answer` runs this inside one transaction with the inbox row locked and
writes the reply with the row marked handled, so a message is answered once. A use case
refusing (a DomainError) rolls back only its own savepoint; the refusal is answered in
the sender's language.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from core import disputes, guarantees, inbox, members, pledges, queries, reputation, stk
from core.db import UnitOfWork
from core.errors import DomainError, NotFound
from core.messages import format_date, sms_parts, text
from core.models import OWING, LoanStatus
from core.phones import masked
from runtime.mpesa import PROVIDER
from sms import community
from sms.context import Context, Reply
from sms.parser import Command, parse

log = logging.getLogger(__name__)


def answer(uow: UnitOfWork, inbound_id: int, now: datetime) -> str:
    """Handle one inbox row; returns what happened (`handled`, `done`, `retry`, `failed`)."""

    def respond(uow: UnitOfWork, message: inbox.Inbound) -> inbox.Answer:
        settings = uow.settings
        command = parse(message.text, scale=settings.app.minor_scale,
                        currency=settings.app.currency,
                        loan_prefix=settings.loan.number_prefix)
        member = message.member
        language = member.language if member else (command.keyword_language or "en")
        if message.phone is None:
            log.info("sms %s from an unusable sender; not answered", inbound_id)
            return inbox.Answer(command.name, language)
        ctx = Context(uow, inbound_id, message.phone, member, language, now)
        reply = _reply_to(ctx, command)
        if reply is None:
            return inbox.Answer(command.name, ctx.language)
        return inbox.Answer(command.name, ctx.language, reply.key, reply.params)

    try:
        return inbox.answer(uow, inbound_id, now, respond)
    except Exception as exc:  # noqa: BLE001 - kept for the sweep, never lost
        log.exception("sms %s: handler failed", inbound_id)
        return inbox.note_failure(uow, inbound_id, f"{type(exc).__name__}: {exc}", now)


def _reply_to(ctx: Context, command: Command) -> Reply | None:
    """Run the command in a savepoint; a refusal becomes a reply in the sender's words."""
    if ctx.member is None:
        return Reply("member.not_registered",
                     {"service_code": ctx.uow.settings.ussd.service_code})
    if command.name == "unknown":
        if command.suggestion:
            return Reply("sms.unknown_suggest", {"suggestion": command.suggestion})
        return Reply("sms.unknown")
    if command.error:
        return Reply(command.error)
    run = COMMANDS.get(command.name)
    if run is None:
        return Reply("sms.help")
    try:
        with ctx.uow.savepoint():
            return run(ctx, command)
    except DomainError as exc:
        log.info("sms %s from %s refused: %s", ctx.inbound_id, masked(ctx.phone), exc.key)
        return Reply(exc.key, dict(exc.params))


# ---------------------------------------------------------------- one function per command

def _help(ctx: Context, command: Command) -> Reply:
    return Reply("sms.help")


def _balance(ctx: Context, command: Command) -> Reply:
    """Only what may be read over the member's shoulder: the open loan's number and
    where it stands, no amounts. Amounts are on USSD, behind the PIN."""
    assert ctx.member is not None
    view = queries.account(ctx.uow, ctx.member.id, ctx.now)
    code = {"service_code": ctx.uow.settings.ussd.service_code}
    loan = view.open_loan
    if loan is None:
        return Reply("sms.balance", code)
    if loan.status == LoanStatus.LISTED and loan.deadline is not None:
        return Reply("sms.balance_listed", {
            **code, "loan": loan.number, "percent": loan.funded_percent,
            "deadline": format_date(loan.deadline.astimezone(ctx.uow.settings.zone))})
    standing = loan.standing
    if standing is not None and standing.next_due is not None:
        return Reply("sms.balance_late" if standing.behind else "sms.balance_repaying",
                     {**code, "loan": loan.number, "due": format_date(standing.next_due)})
    return Reply("sms.balance_loan", {**code, "loan": loan.number,
                                      "state": text(f"loan_state.{loan.status}", ctx.language)})


def _loans(ctx: Context, command: Command) -> Reply:
    assert ctx.member is not None
    listed = queries.listed(ctx.uow, ctx.now, limit=3, exclude_borrower=ctx.member.id)
    if not listed:
        return Reply("sms.loans_none")
    items: list[str] = []
    for view in listed:
        agent = reputation.agent_words(view.agent, ctx.language)
        item = text("sms.loans_item", ctx.language, loan=view.number,
                    open=ctx.fmt(view.open_amount),
                    purpose=text(f"purpose.{view.purpose}", ctx.language),
                    agent=f"; {agent}" if agent else "")
        if items and sms_parts(text("sms.loans", ctx.language,
                                    items="; ".join([*items, item]))) > 1:
            break
        items.append(item)
    return Reply("sms.loans", {"items": "; ".join(items)})


def _lend(ctx: Context, command: Command) -> Reply | None:
    assert ctx.member is not None and command.loan and command.amount
    pledges.propose_pledge(ctx.uow, lender_id=ctx.member.id, number=command.loan,
                         amount=command.amount, now=ctx.now,
                         request_key=f"sms:{ctx.inbound_id}")
    return None  # core wrote the code SMS


def _yes(ctx: Context, command: Command) -> Reply | None:
    """A pledge's code, or else a guarantee's (one member's waiting codes never
    collide: core/codes.py)."""
    assert command.code
    written = len(ctx.uow.outbox_ids)
    try:
        done = pledges.confirm_pledge(ctx.uow, phone=ctx.phone, code=command.code, now=ctx.now)
    except NotFound as refused:
        try:
            guarantees.consent_by_code(ctx.uow, phone=ctx.phone, code=command.code,
                                       now=ctx.now)
        except NotFound:
            raise refused from None
        return None  # core wrote the receipt (or, on a replay, nothing)
    if len(ctx.uow.outbox_ids) == written:  # confirmed before: core wrote nothing new
        return _already(ctx, done)
    return None  # core wrote the receipt (and the funding notices)


def _already(ctx: Context, done: pledges.Confirmation) -> Reply:
    return Reply("sms.pledge_already", {"code": done.code, "amount": ctx.fmt(done.amount),
                                        "loan": done.loan_number})


def _no(ctx: Context, command: Command) -> Reply | None:
    assert command.code
    try:
        pledges.decline_pledge(ctx.uow, phone=ctx.phone, code=command.code, now=ctx.now)
    except NotFound as refused:
        try:
            guarantees.decline_by_code(ctx.uow, phone=ctx.phone, code=command.code,
                                       now=ctx.now)
        except NotFound:
            raise refused from None
    return None


def _status(ctx: Context, command: Command) -> Reply:
    """A listed loan's funding to anyone; any other loan's state and next date to its
    parties only (to anyone else it does not exist: `queries.loan_seen_by`)."""
    assert ctx.member is not None and command.loan
    view = queries.loan_seen_by(ctx.uow, ctx.member.id, command.loan, ctx.now)
    state = text(f"loan_state.{view.status}", ctx.language)
    if view.status == LoanStatus.LISTED and view.deadline is not None:
        return Reply("sms.status_listed", {
            "loan": view.number, "purpose": text(f"purpose.{view.purpose}", ctx.language),
            "amount": ctx.fmt(view.amount), "percent": view.funded_percent,
            "open": ctx.fmt(view.open_amount),
            "deadline": format_date(view.deadline.astimezone(ctx.uow.settings.zone))})
    standing = view.standing
    if view.status in OWING and standing is not None and standing.next_due:
        # No amounts, as for BAL: a party's phone can be read over their shoulder too.
        return Reply("sms.status_late" if standing.behind else "sms.status_repaying",
                     {"loan": view.number, "state": state,
                      "due": format_date(standing.next_due)})
    return Reply("sms.status_other", {"loan": view.number, "state": state})


def _pay(ctx: Context, command: Command) -> Reply:
    """PAY 500: an M-Pesa prompt for 500 on the borrower's phone; PAY alone: how and
    how much to pay."""
    assert ctx.member is not None
    if command.amount is not None:
        prompt = stk.request(ctx.uow, member_id=ctx.member.id, amount=command.amount,
                             provider=PROVIDER, key=f"sms:{ctx.inbound_id}", now=ctx.now)
        return Reply("sms.stk_sent", {"amount": ctx.fmt(prompt.amount), "loan": prompt.account})
    paybill = ctx.uow.settings.payments.paybill
    loan = queries.account(ctx.uow, ctx.member.id, ctx.now).open_loan
    if loan is not None and loan.standing is not None and loan.standing.next_due:
        return Reply("sms.pay_loan", {"loan": loan.number, "paybill": paybill,
                                      "next_amount": ctx.fmt(loan.standing.next_amount),
                                      "next_due": format_date(loan.standing.next_due)})
    return Reply("sms.pay_general", {"paybill": paybill})


def _lang(ctx: Context, command: Command) -> Reply:
    assert ctx.member is not None and command.language
    members.set_language(ctx.uow, ctx.member.id, command.language)
    ctx.language = command.language
    return Reply("sms.lang_set")


def _stop(ctx: Context, command: Command) -> Reply:
    assert ctx.member is not None
    members.set_tips(ctx.uow, ctx.member.id, wanted=False)
    return Reply("sms.tips_stopped")


def _start(ctx: Context, command: Command) -> Reply:
    assert ctx.member is not None
    members.set_tips(ctx.uow, ctx.member.id, wanted=True)
    inbox.resume_sms(ctx.uow, ctx.member.id)
    return Reply("sms.tips_started")


def _dispute(ctx: Context, command: Command) -> Reply | None:
    assert ctx.member is not None and command.loan and command.text
    disputes.open_dispute(ctx.uow, member_id=ctx.member.id, number=command.loan,
                          reason=command.text, now=ctx.now,
                          request_key=f"sms:{ctx.inbound_id}")
    return None  # core wrote the acknowledgement with the case number


COMMANDS: dict[str, Callable[[Context, Command], Reply | None]] = {
    "help": _help, "balance": _balance, "loans": _loans, "lend": _lend, "yes": _yes,
    "no": _no, "status": _status, "pay": _pay, "lang": _lang, "stop": _stop,
    "start": _start, "dispute": _dispute, **community.COMMANDS,
}

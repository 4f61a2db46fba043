"""Loan lifecycle up to funding: quote, request, list, cancel, expire. Pledges and
funding are in core/pledges.py, the payout to the borrower in core/disbursements.py,
repayments in core/repayments.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction

from sqlalchemy import select, update

from core import guarantees, ledger, outbox
from core.config import Settings
from core.db import UnitOfWork
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from core.groups import group_of
from core.members import check_pin, get_member
from core.messages import format_date
from core.models import (
    OPEN_LOAN_STATES,
    HoldState,
    Loan,
    LoanStatus,
    Member,
    MemberStatus,
    Pledge,
    PledgeStatus,
    Purpose,
    Role,
    Transfer,
)
from core.numbers import loan_number, normalise_loan_number

PURPOSES = ("stock", "farm", "school", "health", "transport", "other")


@dataclass(frozen=True)
class Quote:
    """Key facts shown before the borrower accepts."""

    amount: int
    fee: int
    interest: int
    total: int
    installment: int
    last_installment: int
    count: int
    term_weeks: int
    schedule: tuple[tuple[date, int], ...]

    @property
    def cost(self) -> int:
        return self.fee + self.interest

    @property
    def first_due(self) -> date:
        return self.schedule[0][0]

    @property
    def last_due(self) -> date:
        return self.schedule[-1][0]


def percent_of(amount: int, percent: Fraction | object, unit: int = 1) -> int:
    """`percent`% of `amount`, rounded down to a whole `unit` (exact arithmetic): a fee
    on a loan in whole shillings is whole shillings too."""
    return int(Fraction(amount) * Fraction(str(percent)) / 100 / unit) * unit


def schedule(total: int, count: int, start: date, every_weeks: int,
             unit: int = 1) -> list[tuple[date, int]]:
    """Equal installments in whole `unit`s (what a borrower can pay), the remainder on
    the last; the first due `every_weeks` after `start`."""
    each = total // count // unit * unit
    dues = [(start + timedelta(weeks=every_weeks * (i + 1)), each) for i in range(count)]
    last_date, _ = dues[-1]
    dues[-1] = (last_date, total - each * (count - 1))
    return dues


def amount_bounds(settings: Settings, credit_limit: int) -> tuple[int, int]:
    """The smallest and largest loan a borrower with this credit limit may ask for."""
    return (settings.minor(settings.loan.min_amount),
            min(settings.minor(settings.loan.max_amount), credit_limit))


def check_amount(settings: Settings, amount: int, credit_limit: int) -> None:
    """Raise the reason a borrower with this limit may not ask for `amount`: beyond
    their limit (but within the product), outside what they may ask for at all, or
    not in whole currency units."""
    low, high = amount_bounds(settings, credit_limit)
    if low <= amount <= high:
        if amount % settings.app.minor_scale:  # paid out by M-Pesa, which sends no cents
            raise InvalidInput("loan.whole_units", currency=settings.app.currency_label)
        return
    if credit_limit < amount <= settings.minor(settings.loan.max_amount):
        raise InvalidInput("loan.over_limit", limit=settings.fmt(credit_limit))
    raise InvalidInput("loan.amount_range", min=settings.fmt(low), max=settings.fmt(high))


def quote(settings: Settings, amount: int, term_weeks: int, start: date) -> Quote:
    """Price a loan: fee to the platform, interest to lenders, equal installments."""
    product = settings.loan
    low, high = settings.minor(product.min_amount), settings.minor(product.max_amount)
    if not low <= amount <= high:
        raise InvalidInput("loan.amount_range", min=settings.fmt(low), max=settings.fmt(high))
    if term_weeks not in product.terms_weeks:
        raise InvalidInput("loan.term_invalid",
                           terms=", ".join(str(t) for t in product.terms_weeks))
    unit = settings.app.minor_scale
    fee = percent_of(amount, product.fee_percent, unit)
    interest = percent_of(amount, product.lender_interest_percent, unit)
    total = amount + fee + interest
    count = term_weeks // product.installment_every_weeks
    dues = schedule(total, count, start, product.installment_every_weeks, unit)
    return Quote(amount=amount, fee=fee, interest=interest, total=total,
                 installment=dues[0][1], last_installment=dues[-1][1], count=count,
                 term_weeks=term_weeks, schedule=tuple(dues))


def find_loan(uow: UnitOfWork, number: str, *, lock: bool = False) -> Loan:
    normal = normalise_loan_number(number, uow.settings.loan.number_prefix)
    if normal is None:
        raise NotFound("loan.not_found", number=number.strip()[:10])
    query = select(Loan).where(Loan.number == normal)
    if lock:
        query = query.with_for_update()
    loan = uow.session.scalar(query)
    if loan is None:
        raise NotFound("loan.not_found", number=normal)
    return loan


LENDING = (PledgeStatus.CONFIRMED, PledgeStatus.POSTED, PledgeStatus.VOIDED)
"""Pledges whose money a loan holds, took, or held until it closed unfunded: the
lenders among a loan's parties. A pledge only proposed does not count: anyone may
propose one while a loan is listed."""


def is_party(uow: UnitOfWork, loan: Loan, member_id: int) -> bool:
    """Whether `member_id` may see how `loan` stands: its borrower, the agent who
    vouched for the borrower (`Member.agent_id`), or one of its lenders."""
    if member_id in (loan.borrower_id, loan.borrower.agent_id):
        return True
    return uow.session.scalar(select(Pledge.id).where(
        Pledge.loan_id == loan.id, Pledge.lender_id == member_id,
        Pledge.status.in_(LENDING)).limit(1)) is not None


def find_loan_for(uow: UnitOfWork, member_id: int, number: str) -> Loan:
    """A loan by number as `member_id` may see it: any loan still listed (lenders browse
    those), otherwise only one they are a party to. To anyone else it is the NotFound
    of a number never given, word for word, so that asking tells no one whether a
    neighbour has a loan or is behind on it."""
    loan = find_loan(uow, number)
    if loan.status != LoanStatus.LISTED and not is_party(uow, loan, member_id):
        raise NotFound("loan.not_found", number=loan.number)
    return loan


def _own_loan(uow: UnitOfWork, borrower_id: int, number: str) -> Loan:
    """The borrower's loan with this number, locked; another's is not found (as in
    `find_loan_for`: no one learns of a loan by guessing its number)."""
    loan = find_loan(uow, number, lock=True)
    if loan.borrower_id != borrower_id:
        raise NotFound("loan.not_found", number=loan.number)
    return loan


def require_active(member: Member, role: Role) -> None:
    if member.status == MemberStatus.SUSPENDED:
        raise NotAllowed("member.suspended")
    if not member.has_role(role):
        raise NotAllowed(f"member.not_{role}")


def open_loan_of(uow: UnitOfWork, borrower_id: int) -> Loan | None:
    """The borrower's open loan (draft to defaulted), if any."""
    return uow.session.scalar(select(Loan).where(
        Loan.borrower_id == borrower_id, Loan.status.in_(OPEN_LOAN_STATES))
        .order_by(Loan.id.desc()).limit(1))


def require_may_borrow(member: Member, current: Loan | None, settings: Settings) -> None:
    """Raise the reason `member` may not ask for a loan now: suspended, not a
    borrower, not yet verified by an agent, terms not accepted, or a loan already open
    (an unsent draft does not count: a new request replaces it)."""
    require_active(member, Role.BORROWER)
    if member.status != MemberStatus.VERIFIED:
        raise NotAllowed("member.not_verified")
    if member.terms_accepted_at is None:
        raise NotAllowed("member.terms_needed", service_code=settings.ussd.service_code)
    if current is not None and current.status != LoanStatus.DRAFT:
        raise NotAllowed("loan.one_open", number=current.number)


def borrowing_limit(uow: UnitOfWork, member: Member) -> int:
    """The most the member may ask for now (`limit_for`)."""
    return limit_for(uow.settings, member.credit_limit, member.loans_repaid,
                     in_group=group_of(uow, member.id) is not None)


def limit_for(settings: Settings, credit_limit: int, loans_repaid: int, *,
              in_group: bool) -> int:
    """A member's own limit, or for a first loan of a member of a group,
    `trust.guaranteed_first_limit` (what lies above their own limit must then be
    covered by guarantors before lenders may pledge)."""
    raised = min(settings.minor(settings.trust.guaranteed_first_limit),
                 settings.minor(settings.credit.cap))
    if loans_repaid == 0 and raised > credit_limit and in_group:
        return raised
    return credit_limit


def check_may_borrow(uow: UnitOfWork, borrower_id: int) -> None:
    """Before any typing: raise the reason the borrower may not ask for a loan now."""
    with uow:
        require_may_borrow(get_member(uow, borrower_id), open_loan_of(uow, borrower_id),
                           uow.settings)


def request_loan(uow: UnitOfWork, *, borrower_id: int, amount: int, term_weeks: int,
                 purpose: str, now: datetime, request_key: str | None = None,
                 ) -> tuple[Loan, Quote]:
    """A draft loan with its key facts; listing it needs the borrower's PIN."""
    settings = uow.settings
    with uow:
        if request_key:
            existing = uow.session.scalar(select(Loan).where(Loan.request_key == request_key))
            if existing is not None:
                if (existing.borrower_id, existing.amount, existing.term_weeks,
                        existing.purpose) != (borrower_id, amount, term_weeks, purpose):
                    raise Conflict("ledger.key_reused")
                return existing, quote(settings, existing.amount, existing.term_weeks,
                                       existing.created_at.astimezone(settings.zone).date())
        borrower = get_member(uow, borrower_id)
        current = open_loan_of(uow, borrower.id)
        require_may_borrow(borrower, current, settings)
        if purpose not in PURPOSES:
            raise InvalidInput("loan.purpose_invalid")
        check_amount(settings, amount, borrowing_limit(uow, borrower))
        facts = quote(settings, amount, term_weeks, now.astimezone(settings.zone).date())
        if current is not None:  # a draft: a newer one replaces an unsent one
            current.status = LoanStatus.CANCELLED
            current.closed_at = now
        loan = Loan(borrower_id=borrower.id, status=LoanStatus.DRAFT, amount=amount,
                    fee=facts.fee, interest=facts.interest, term_weeks=term_weeks,
                    installment_count=facts.count, purpose=purpose, pledged=0, funded=0,
                    repaid=0, fee_paid=0, created_at=now, request_key=request_key,
                    guarantee_needed=max(0, amount - borrower.credit_limit), guaranteed=0,
                    extended=False)
        uow.session.add(loan)
        uow.session.flush()
        loan.number = loan_number(settings.loan.number_prefix, loan.id)
        uow.commit()
        return loan, facts


def list_loan(uow: UnitOfWork, *, borrower_id: int, number: str, pin: str,
              now: datetime) -> Loan:
    """The borrower accepts the key facts of a draft with their PIN: the loan opens to
    lenders."""
    check_pin(uow, borrower_id, pin, now)
    with uow:
        loan = _own_loan(uow, borrower_id, number)
        if loan.status == LoanStatus.LISTED:
            return loan
        if loan.status != LoanStatus.DRAFT:
            raise NotAllowed("loan.not_draft", number=loan.number)
        _open_to_lenders(uow, loan, now)
        uow.commit()
        return loan


def apply(uow: UnitOfWork, *, borrower_id: int, amount: int, term_weeks: int, purpose: str,
          pin: str, now: datetime, request_key: str) -> Loan:
    """The borrower, having seen the key facts (`quote`), accepts them with their PIN:
    the loan is made and opened to lenders at once, so stopping before the PIN leaves
    nothing behind. Idempotent by `request_key`."""
    check_pin(uow, borrower_id, pin, now)
    with uow:
        loan, _ = request_loan(uow, borrower_id=borrower_id, amount=amount,
                               term_weeks=term_weeks, purpose=purpose, now=now,
                               request_key=request_key)
        if loan.status == LoanStatus.DRAFT:
            _open_to_lenders(uow, loan, now)
        uow.commit()
        return loan


def _open_to_lenders(uow: UnitOfWork, loan: Loan, now: datetime) -> None:
    """A draft listed: its escrow account, its deadline, and the borrower's SMS."""
    settings = uow.settings
    borrower = get_member(uow, loan.borrower_id)
    account = ledger.ensure_account(uow, f"loan:{loan.id}", ledger.AccountKind.LOAN,
                                    no_overdraft=True)
    loan.account_id = account.id
    loan.status = LoanStatus.LISTED
    loan.listed_at = now
    loan.deadline = now + timedelta(days=settings.loan.funding_window_days)
    outbox.queue(uow, [outbox.sms_to(
        borrower, f"listed:{loan.id}", "sms.loan_listed", Purpose.NOTICE, loan=loan.number,
        amount=settings.fmt(loan.amount),
        deadline=format_date(loan.deadline.astimezone(settings.zone), borrower.language))],
        now)


# ---------------------------------------------------------------- closing unfunded

def release(uow: UnitOfWork, loan: Loan, now: datetime, *, status: LoanStatus,
             hold_state: HoldState, lender_template: str, borrower_template: str) -> None:
    settings = uow.settings
    confirmed = list(uow.session.scalars(select(Pledge).where(
        Pledge.loan_id == loan.id, Pledge.status == PledgeStatus.CONFIRMED).order_by(Pledge.id)))
    holds = list(uow.session.scalars(select(Transfer).where(
        Transfer.id.in_([p.hold_id for p in confirmed]))))
    ledger.resolve_holds(uow, holds, now, to=hold_state)
    guarantees.release_all(uow, loan, now)
    for pledge in confirmed:
        pledge.status = PledgeStatus.VOIDED
        pledge.closed_at = now
    uow.session.execute(update(Pledge).where(
        Pledge.loan_id == loan.id, Pledge.status == PledgeStatus.PROPOSED)
        .values(status=PledgeStatus.LAPSED, closed_at=now)
        .execution_options(synchronize_session=False))
    loan.status = status
    loan.pledged = 0
    loan.closed_at = now
    loan.choice_until = None
    deadline = format_date(loan.deadline.astimezone(settings.zone)) if loan.deadline else ""
    messages = [outbox.sms_to(loan.borrower, f"{status}:{loan.id}", borrower_template,
                              Purpose.NOTICE, loan=loan.number, deadline=deadline)]
    messages += [outbox.sms_to(p.lender, f"{status}:{loan.id}:{p.id}", lender_template,
                               Purpose.NOTICE, loan=loan.number, amount=settings.fmt(p.amount))
                 for p in confirmed]
    outbox.queue(uow, messages, now)


def cancel_loan(uow: UnitOfWork, *, borrower_id: int, number: str, now: datetime) -> Loan:
    """The borrower withdraws a draft or listed loan; every hold is voided."""
    with uow:
        loan = _own_loan(uow, borrower_id, number)
        if loan.status == LoanStatus.CANCELLED:
            return loan
        if loan.status not in (LoanStatus.DRAFT, LoanStatus.LISTED):
            raise NotAllowed("loan.not_listed", number=loan.number)
        release(uow, loan, now, status=LoanStatus.CANCELLED, hold_state=HoldState.VOIDED,
                 lender_template="sms.loan_cancelled_lender",
                 borrower_template="sms.loan_cancelled_borrower")
        uow.commit()
        return loan


def expire_loans(uow: UnitOfWork, now: datetime, *, limit: int = 200) -> list[str]:
    """Listed loans past their deadline close; holds expire; everyone is told. One
    batch of at most `limit`; returns their numbers (empty when none was due)."""
    with uow:
        due = list(uow.session.scalars(select(Loan).where(
            Loan.status == LoanStatus.LISTED, Loan.deadline <= now,
            Loan.choice_until.is_(None)).order_by(Loan.id)
            .limit(limit).with_for_update(skip_locked=True)))  # SQLite renders no FOR UPDATE
        expired = []
        for loan in due:
            if choice_due(loan, uow.settings):
                _offer_choice(uow, loan, now)
                continue
            release(uow, loan, now, status=LoanStatus.EXPIRED, hold_state=HoldState.EXPIRED,
                     lender_template="sms.loan_expired_lender",
                     borrower_template="sms.loan_expired_borrower")
            expired.append(loan.number or "")
        uow.commit()
        return expired


def choice_due(loan: Loan, settings: Settings) -> bool:
    """At its deadline, a loan at least `trust.partial_min_percent` funded (and no less
    than the smallest loan) is not expired: its borrower chooses (core/choices.py)."""
    return (loan.pledged * 100 >= loan.amount * settings.trust.partial_min_percent
            and loan.pledged >= settings.minor(settings.loan.min_amount)
            and guarantees.pledging_open(loan))


def _offer_choice(uow: UnitOfWork, loan: Loan, now: datetime) -> None:
    """The borrower is told by SMS, and "Group & requests" shows the choice, until
    `trust.choice_hours` from now; then the loan is cancelled (`choices.lapse`)."""
    settings = uow.settings
    hours = settings.trust.choice_hours
    loan.choice_until = now + timedelta(hours=hours)
    outbox.queue(uow, [outbox.sms_to(
        loan.borrower, f"choice:{loan.id}:{int(loan.extended)}",
        "sms.choice_offer_final" if loan.extended else "sms.choice_offer", Purpose.NOTICE,
        loan=loan.number, percent=loan.pledged * 100 // loan.amount,
        pledged=settings.fmt(loan.pledged), hours=hours, days=settings.trust.extend_days,
        service_code=settings.ussd.service_code)], now)

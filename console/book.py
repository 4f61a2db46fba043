"""The loan book: the portfolio dashboard, the loans behind every figure, one loan's
timeline, and the agents' trust signal."""
from __future__ import annotations

from typing import Any

from flask import abort, url_for

from console import charts
from console.access import ANYONE, FINANCE, bp, requires
from console.render import (
    PAGE,
    arg_date,
    arg_int,
    arg_text,
    csv_link,
    csv_response,
    page,
    page_number,
    wants_csv,
)
from core import casebook, portfolio
from core.errors import NotFound
from core.models import LoanStatus
from runtime.http import services

STATES = ["owing", *(s.value for s in LoanStatus)]


def _book_filter() -> portfolio.BookFilter:
    return portfolio.BookFilter(agent_id=arg_int("agent"),
                                village=arg_text("village", 40),
                                since=arg_date("since"), until=arg_date("until"))


def loans_link(where: portfolio.BookFilter, **more: Any) -> str:
    """The loans list behind a figure, under the same filter."""
    args: dict[str, Any] = {**where.query_args(), **more}
    return url_for("console.loans", **args)


@bp.get("/dashboard")
@requires(FINANCE)
def dashboard() -> Any:
    svc = services()
    where = _book_filter()
    board = portfolio.dashboard(svc.uow(), where, svc.now())
    scale = svc.settings.app.minor_scale
    if wants_csv():
        rows = [("loans", board.loans), ("principal_outstanding", board.outstanding),
                *((f"par{d}", board.par(d)) for d in portfolio.PAR_DAYS),
                ("repayment_rate", board.repayment_rate), ("default_rate", board.default_rate),
                ("median_days_to_fund", board.median_days_to_fund),
                ("active_borrowers", board.active_borrowers),
                ("active_lenders", board.active_lenders),
                ("sms_delivery_rate", board.sms_delivery_rate),
                *((f"loans_{state}", n) for state, n in sorted(board.by_state.items())),
                *((f"disbursed_week_{m.isoformat()}", a) for m, _, a in board.disbursed_weeks)]
        return csv_response("dashboard", ("figure", "value"), rows)
    return page("dashboard.html", title="Portfolio", board=board, where=where,
                link=lambda **more: loans_link(where, **more),
                agents=casebook.agent_choices(svc.uow()),
                places=casebook.places(svc.uow()), par_days=portfolio.PAR_DAYS,
                chart_weeks=charts.disbursed_per_week(board, scale),
                chart_states=charts.loans_by_state(board),
                chart_par=charts.portfolio_at_risk(board), csv=csv_link())


@bp.get("/loans")
@requires(*ANYONE)
def loans() -> Any:
    svc = services()
    state = arg_text("state", 20)
    where = portfolio.LoanFilter(book=_book_filter(), state=state if state in STATES else "",
                                 late_over=arg_int("late_over"),
                                 number=arg_text("number", 12))
    number = page_number()
    if wants_csv():
        rows = portfolio.loans(svc.uow(), where, svc.now(), limit=100_000)
        return csv_response("loans", ("number", "status", "amount_minor", "outstanding_minor",
                                      "borrower", "place", "days_late", "disbursed_at"),
                            ((r.number, r.status, r.amount, r.outstanding, r.borrower, r.place,
                              r.days_late, r.disbursed_at) for r in rows))
    rows = portfolio.loans(svc.uow(), where, svc.now(), limit=PAGE, offset=(number - 1) * PAGE)
    return page("loans.html", title="Loans", rows=rows, where=where, states=STATES,
                page_number=number, more=len(rows) == PAGE, csv=csv_link(),
                agents=casebook.agent_choices(svc.uow()))


@bp.get("/loans/<number>")
@requires(*ANYONE)
def loan(number: str) -> Any:
    svc = services()
    try:
        file = casebook.loan_file(svc.uow(), number[:12], svc.now())
    except NotFound:
        abort(404)
    if wants_csv():
        return csv_response(f"loan-{file.loan.number}", ("at", "kind", "what", "amount_minor",
                                                         "status"),
                            ((e.at, e.kind, e.text, e.amount, e.status) for e in file.events))
    return page("loan.html", title=f"Loan {file.loan.number}", file=file, csv=csv_link())


@bp.get("/agents")
@requires(*ANYONE)
def agents() -> Any:
    svc = services()
    rows = casebook.agents(svc.uow(), svc.now())
    if wants_csv():
        return csv_response("agents", ("name", "phone", "status", "place", "members",
                                       "outstanding_minor", "par30", "default_rate",
                                       "last_acted"),
                            ((a.name, a.phone, a.status, a.place, a.members, a.outstanding,
                              a.par30, a.default_rate, a.last_acted) for a in rows))
    return page("agents.html", title="Agents", rows=rows, csv=csv_link())

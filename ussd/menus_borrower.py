"""The borrower's menus: request a loan (amount, purpose, term, key facts, PIN), my
loans, how to repay, and my account."""
from __future__ import annotations

from typing import Any

from core.loans import PURPOSES, amount_bounds, check_amount, quote
from core.messages import format_date
from core.models import LoanStatus
from core.queries import LoanView
from ussd.nodes import (
    NAV_MORE,
    REASON,
    SHOW_CURRENT,
    Info,
    Node,
    Outcome,
    Reask,
    fmt,
    menu,
    pick,
    read_amount,
    root_of,
    t,
)
from ussd.port import Port
from ussd.screen import Screen, squeeze
from ussd.state import State


class LoanAmount(Node):
    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        low, high = amount_bounds(port.settings, st.caller.limit)
        return Screen(title=t(st, "ussd.loan.limit", limit=fmt(port, st.caller.limit)),
                      body=t(st, "ussd.loan.amount", min=fmt(port, low), max=fmt(port, high)))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        amount = read_amount(value, port)
        check_amount(port.settings, amount, st.caller.limit)
        st.data["amount"] = amount
        return "loan.purpose"


class LoanPurpose(Node):
    def show(self, st: State, port: Port) -> Screen:
        return menu(st, t(st, "ussd.loan.purpose"), [t(st, f"purpose.{p}") for p in PURPOSES])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        st.data["purpose"] = PURPOSES[pick(value, len(PURPOSES))]
        return "loan.term"


class LoanTerm(Node):
    def show(self, st: State, port: Port) -> Screen:
        terms = port.settings.loan.terms_weeks
        return menu(st, t(st, "ussd.loan.term"), [t(st, "ussd.weeks", n=n) for n in terms])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        terms = port.settings.loan.terms_weeks
        term = terms[pick(value, len(terms))]
        facts = quote(port.settings, int(st.data["amount"]), term, port.today())
        st.data.update(term=term, fee=facts.cost, total=facts.total,
                       installment=facts.installment, last=facts.last_installment,
                       count=facts.count)
        return "loan.facts"


def every(st: State, port: Port) -> str:
    """How often an installment falls due, in words: `week`, `2 weeks`."""
    n = port.settings.loan.installment_every_weeks
    return t(st, "period.week") if n == 1 else t(st, "period.weeks", n=n)


class LoanFacts(Node):
    """The key facts the borrower accepts before the loan is asked for. Dates count
    from the day the money arrives: funding may take days, so no date is promised."""

    def show(self, st: State, port: Port) -> Screen:
        d = st.data
        period = every(st, port)
        if d["last"] == d["installment"]:
            plan = t(st, "ussd.facts.plan", count=d["count"], each=fmt(port, d["installment"]),
                     period=period)
        else:
            plan = t(st, "ussd.facts.plan_last", count=d["count"] - 1,
                     each=fmt(port, d["installment"]), last=fmt(port, d["last"]),
                     period=period)
        first = (t(st, "ussd.weeks_one") if port.settings.loan.installment_every_weeks == 1
                 else t(st, "ussd.weeks", n=port.settings.loan.installment_every_weeks))
        title = t(st, "ussd.facts", amount=fmt(port, d["amount"]), fee=fmt(port, d["fee"]),
                  total=fmt(port, d["total"]), plan=plan, first=first)
        labels = [t(st, "ussd.facts.accept"), t(st, "ussd.facts.cancel")]
        return menu(st, title, labels, back=False)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        if pick(value, 2) == 0:
            return "loan.pin"
        st.data = {}
        return root_of(st)  # nothing was asked for: back to the main menu


class LoanPin(Node):
    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.loan.pin"))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        d = st.data
        amount, term, purpose = int(d["amount"]), int(d["term"]), str(d["purpose"])
        listed = port.apply(member_id=st.caller.id, amount=amount, term_weeks=term,
                            purpose=purpose, pin=value[:12],
                            key=st.flow_key(f"loan:{amount}:{term}:{purpose}"))
        deadline = format_date(listed.deadline.astimezone(port.settings.zone)) \
            if listed.deadline else ""
        return Screen(t(st, "ussd.loan.listed", number=listed.number, deadline=deadline),
                      end=True)


def loan_line(st: State, port: Port, loan: LoanView, width: int) -> str:
    """One loan in a line of at most `width` characters: status and where it stands."""
    status = t(st, f"ussd.status.{loan.status}")
    if loan.status == LoanStatus.LISTED:
        detail = t(st, "ussd.loans.funded", amount=fmt(port, loan.amount),
                   percent=loan.funded_percent)
    elif loan.standing is not None and loan.standing.next_due is not None:
        due = loan.standing.next_due.strftime("%d/%m")
        if loan.standing.behind:
            detail = t(st, "ussd.loans.behind", amount=fmt(port, loan.standing.behind), due=due)
        else:
            detail = t(st, "ussd.loans.next", amount=fmt(port, loan.standing.next_amount),
                       due=due)
    else:
        detail = fmt(port, loan.amount)
    return squeeze("{number} {status}: {detail}", width,
                   {"number": loan.number, "status": status, "detail": detail},
                   ("status",))


def page_footer(st: State, more: bool) -> str:
    parts = ([t(st, "ussd.nav.more")] if more else []) + [t(st, "ussd.nav.back")]
    return "\n".join(parts)


class Paged(Node):
    """A list shown a page at a time: `98` more, `0` back a page. Subclasses fetch
    rows and write one row in a line of a given width."""

    empty_key = ""
    choosable = False  # rows are picked by number (else the list is only read)

    def __init__(self, name: str, **kw: object) -> None:
        super().__init__(name, paged=True, **kw)  # type: ignore[arg-type]

    def rows(self, st: State, port: Port, offset: int, limit: int) -> list[Any]:
        raise NotImplementedError

    def line(self, st: State, port: Port, n: int, row: Any, width: int) -> str:
        raise NotImplementedError

    def show(self, st: State, port: Port) -> Screen:
        why = st.data.pop(REASON, "")
        size = port.settings.ussd.page_size
        rows = self.rows(st, port, st.page * size, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        st.data["more"] = more
        if not rows:
            return Screen(t(st, self.empty_key) + "\n" + t(st, "ussd.nav.back"), title=why)
        footer = page_footer(st, more)
        room = port.settings.ussd.max_chars - 4 - len(footer) - (len(why) + 1 if why else 0)
        width = room // len(rows) - 1
        lines = [self.line(st, port, n, row, width) for n, row in enumerate(rows, start=1)]
        return Screen("\n".join(lines) + "\n" + footer, title=why)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        if value == NAV_MORE and st.data.get("more"):
            st.page += 1
            return SHOW_CURRENT
        if not self.choosable:
            return self.parent  # a list to read: any other answer goes back
        raise Reask("ussd.choose")


class MyLoans(Paged):
    empty_key = "ussd.loans.none"

    def rows(self, st: State, port: Port, offset: int, limit: int) -> list[Any]:
        assert st.caller is not None
        return port.loans_of(st.caller.id, offset=offset, limit=limit)

    def line(self, st: State, port: Port, n: int, row: Any, width: int) -> str:
        return loan_line(st, port, row, width)


class HowToRepay(Node):
    """How to pay by paybill, and, with a loan open, an M-Pesa prompt on this phone."""

    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        number = port.open_loan_number(st.caller.id)
        account = number or t(st, "ussd.repay.your_number")
        body = t(st, "ussd.repay.body", paybill=port.settings.payments.paybill, account=account)
        if number is None:
            return Screen(body + "\n" + t(st, "ussd.nav.back"))
        st.data["loan"] = number
        return menu(st, body, [t(st, "ussd.repay.now")])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        if "loan" not in st.data:
            return self.parent
        pick(value, 1)
        return "repay.amount"


class RepayAmount(Node):
    """Pay now: the amount, then the M-Pesa prompt on this phone."""

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.repay.amount", loan=st.data.get("loan", "")))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        amount = read_amount(value, port)
        loan = port.request_stk(member_id=st.caller.id, amount=amount,
                                key=st.flow_key(f"stk:{amount}"))
        return Screen(t(st, "ussd.repay.prompted", amount=fmt(port, amount), loan=loan),
                      end=True)


class MyAccount(Info):
    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        view = port.account(st.caller.id)
        lines = [t(st, "ussd.account.limit", limit=fmt(port, view.credit_limit))
                 + (" " + t(st, "ussd.account.frozen") if view.limit_frozen else ""),
                 t(st, "ussd.account.record", on_time=view.loans_repaid_on_time,
                   repaid=view.loans_repaid),
                 t(st, "ussd.account.wallet", balance=fmt(port, view.wallet_balance),
                   held=fmt(port, view.held))]
        if view.open_loan is not None:
            lines.append(t(st, "ussd.account.loan", number=view.open_loan.number,
                           status=t(st, f"ussd.status.{view.open_loan.status}")))
        return Screen("\n".join(lines) + "\n" + t(st, "ussd.nav.back"))


LoanAmount("loan.amount", parent="main", resumable=True)
LoanPurpose("loan.purpose", parent="loan.amount", resumable=True)
LoanTerm("loan.term", parent="loan.purpose", resumable=True)
LoanFacts("loan.facts", parent="loan.term", resumable=True)
LoanPin("loan.pin", parent="loan.facts", resumable=True)
MyLoans("loans", parent="main")
HowToRepay("repay", parent="main")
RepayAmount("repay.amount", parent="repay", resumable=True)
MyAccount("account", parent="main")

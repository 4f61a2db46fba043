"""The borrower's menus: request a loan (amount, purpose, term, key facts, PIN), my
loans (each one's detail, withdrawing a listed loan), how to repay, and my account."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from core.loans import PURPOSES, amount_bounds, check_amount, quote
from core.models import LoanStatus
from core.queries import LoanView
from ussd.lists import Paged
from ussd.nodes import Info, Node, Outcome, Reask, fmt, menu, pick, read_amount, root_of, t
from ussd.port import Port
from ussd.screen import Screen
from ussd.state import State

# ---------------------------------------------------------------- asking for a loan


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
        return menu(st, t(st, "ussd.loan.term"), [weeks(st, n) for n in terms])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        terms = port.settings.loan.terms_weeks
        term = terms[pick(value, len(terms))]
        facts = quote(port.settings, int(st.data["amount"]), term, port.today())
        st.data.update(term=term, fee=facts.cost, total=facts.total,
                       installment=facts.installment, last=facts.last_installment,
                       count=facts.count)
        return "loan.facts"


def weeks(st: State, n: int) -> str:
    """`1 week`, `8 weeks`, in the caller's language."""
    return t(st, "ussd.weeks_one") if n == 1 else t(st, "ussd.weeks", n=n)


class LoanFacts(Node):
    """The key facts the borrower accepts before the loan is asked for. Dates count
    from the day the money arrives: funding may take days, so no date is promised here;
    the SMS at payout carries the exact dates."""

    def show(self, st: State, port: Port) -> Screen:
        d = st.data
        n = port.settings.loan.installment_every_weeks
        every = t(st, "ussd.every_week") if n == 1 else t(st, "ussd.every_weeks", n=n)
        each = fmt(port, d["installment"])
        if d["last"] == d["installment"]:
            plan = t(st, "ussd.facts.plan", count=d["count"], each=each, every=every)
        else:
            plan = t(st, "ussd.facts.plan_last", count=d["count"] - 1, each=each,
                     last=fmt(port, d["last"]), every=every)
        title = t(st, "ussd.facts", amount=fmt(port, d["amount"]), fee=fmt(port, d["fee"]),
                  total=fmt(port, d["total"]), plan=plan, first=weeks(st, n))
        labels = [t(st, "ussd.facts.accept"), t(st, "ussd.facts.cancel")]
        return menu(st, title, labels, back=False)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        if pick(value, 2) == 0:
            return "loan.pin"
        st.data = {}
        return root_of(st)  # nothing was asked for: back to the main menu


class LoanPin(Node):
    secret_input = True

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.loan.pin"))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        d = st.data
        amount, term, purpose = int(d["amount"]), int(d["term"]), str(d["purpose"])
        listed = port.apply(member_id=st.caller.id, amount=amount, term_weeks=term,
                            purpose=purpose, pin=value[:12],
                            key=st.flow_key(f"loan:{amount}:{term}:{purpose}"))
        return Screen(t(st, "ussd.loan.listed", number=listed.number,
                        deadline=day(port, listed.deadline)), end=True)


def day(port: Port, when: date | datetime | None) -> str:
    """A date as a screen shows it (`08/12`: within weeks, the year goes without
    saying); a moment is read on the local calendar."""
    if when is None:
        return ""
    if isinstance(when, datetime):
        when = when.astimezone(port.settings.zone).date()
    return when.strftime("%d/%m")


# ---------------------------------------------------------------- my loans


def standing_text(st: State, port: Port, loan: LoanView) -> str:
    """Where a loan stands, in the fewest words that say what to do next."""
    standing = loan.standing
    if loan.status == LoanStatus.LISTED:
        return t(st, "ussd.loans.listed", percent=loan.funded_percent,
                 amount=fmt(port, loan.amount))
    if standing is not None and standing.next_due is not None:
        if standing.behind:
            return t(st, "ussd.loans.late", amount=fmt(port, standing.behind))
        return t(st, "ussd.loans.next", amount=fmt(port, standing.next_amount),
                 due=day(port, standing.next_due))
    return t(st, f"ussd.status.{loan.status}")


def loan_line(st: State, port: Port, loan: LoanView) -> str:
    return f"{loan.number}: {standing_text(st, port, loan)}"


class MyLoans(Paged):
    """The borrower's loans, newest first; pick one for its detail."""

    empty_key = "ussd.loans.none"
    choosable = True

    def rows(self, st: State, port: Port, offset: int, limit: int) -> list[Any]:
        assert st.caller is not None
        return port.loans_of(st.caller.id, offset=offset, limit=limit)

    def line(self, st: State, port: Port, row: Any, room: int) -> str:
        return loan_line(st, port, row)

    def key_of(self, row: Any) -> Any:
        return row.number

    def chosen(self, st: State, port: Port, picked: Any) -> Outcome:
        st.data["loan"] = picked
        return "loan"


def loan_detail(st: State, port: Port, loan: LoanView) -> str:
    """One loan in full, as its borrower sees it."""
    standing = loan.standing
    if loan.status == LoanStatus.LISTED:
        return t(st, "ussd.loan.detail_listed", number=loan.number, amount=fmt(port, loan.amount),
                 percent=loan.funded_percent, open=fmt(port, loan.open_amount),
                 deadline=day(port, loan.deadline))
    if standing is not None and standing.next_due is not None:
        key = "ussd.loan.detail_late" if standing.behind else "ussd.loan.detail_repaying"
        return t(st, key, number=loan.number, left=fmt(port, loan.outstanding),
                 late=fmt(port, standing.behind), next=fmt(port, standing.next_amount),
                 due=day(port, standing.next_due))
    return t(st, "ussd.loan.detail", number=loan.number, amount=fmt(port, loan.amount),
             status=t(st, f"ussd.status.{loan.status}"))


class LoanDetail(Node):
    """One of my loans: where it stands, and what can be done with it now."""

    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        loan = port.loan_of(st.caller.id, str(st.data["loan"]))
        st.data["status"] = str(loan.status)
        st.data["loan_amount"] = loan.amount
        labels = [t(st, action) for action in self.actions(loan)]
        return menu(st, loan_detail(st, port, loan), labels)

    @staticmethod
    def actions(loan: LoanView) -> list[str]:
        if loan.status == LoanStatus.LISTED:
            return ["ussd.loan.withdraw", "ussd.loan.guarantor"]
        if loan.standing is not None and loan.standing.next_due is not None:
            if loan.status == LoanStatus.DEFAULTED:
                return ["ussd.repay.now"]
            return ["ussd.repay.now", "ussd.loan.pause"]
        return []

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        number = st.data["loan"]
        if st.data.get("status") == LoanStatus.LISTED:
            if pick(value, 2) == 0:
                return "loan.withdraw"
            st.data = {"loan": number, "loan_amount": st.data.get("loan_amount", 0)}
            return "guarantor.phone"
        if st.data.get("status") in (LoanStatus.DISBURSED, LoanStatus.REPAYING,
                                     LoanStatus.IN_ARREARS, LoanStatus.DEFAULTED):
            paused = st.data.get("status") != LoanStatus.DEFAULTED
            chosen = pick(value, 2 if paused else 1)
            st.begin_flow()
            st.data["loan"] = number
            return "repay.amount" if chosen == 0 else "pause.weeks"
        return self.parent


class WithdrawLoan(Node):
    """A listed loan taken back: pledges are released to the lenders' wallets."""

    def show(self, st: State, port: Port) -> Screen:
        return menu(st, t(st, "ussd.loan.withdraw_ask", number=st.data["loan"]),
                    [t(st, "ussd.loan.withdraw_yes")])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        pick(value, 1)
        number = str(st.data["loan"])
        port.cancel_loan(member_id=st.caller.id, number=number)
        st.data = {}
        raise Reask("ussd.loan.withdrawn", node=root_of(st), number=number)


# ---------------------------------------------------------------- repaying


class HowToRepay(Node):
    """What is due next and by when, what is left, how to pay; and, with a loan being
    repaid, an M-Pesa prompt on this phone."""

    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        loan = port.open_loan(st.caller.id)
        paybill = port.settings.payments.paybill
        if loan is None:
            return Screen(t(st, "ussd.repay.none", paybill=paybill) + "\n"
                          + t(st, "ussd.nav.back"))
        if loan.standing is None or loan.standing.next_due is None:
            return Screen(t(st, "ussd.repay.not_yet", number=loan.number) + "\n"
                          + t(st, "ussd.nav.back"))
        st.data["loan"] = loan.number
        title = (loan_detail(st, port, loan) + "\n"
                 + t(st, "ussd.repay.how", paybill=paybill, number=loan.number))
        return menu(st, title, [t(st, "ussd.repay.now")])

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


# ---------------------------------------------------------------- my account


class MyAccount(Info):
    """Limit, record, wallet and the open loan: shown after the PIN, once a session."""

    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        view = port.account(st.caller.id)
        limit = t(st, "ussd.account.frozen" if view.limit_frozen else "ussd.account.limit",
                  limit=fmt(port, view.credit_limit))
        lines = [limit, t(st, "ussd.account.record", on_time=view.loans_repaid_on_time,
                          repaid=view.loans_repaid),
                 t(st, "ussd.account.wallet", balance=fmt(port, view.wallet_balance),
                   held=fmt(port, view.held))]
        if view.open_loan is not None:
            lines.append(loan_line(st, port, view.open_loan))
        return Screen("\n".join(lines) + "\n" + t(st, "ussd.nav.back"))


LoanAmount("loan.amount", parent="main", resumable=True)
LoanPurpose("loan.purpose", parent="loan.amount", resumable=True)
LoanTerm("loan.term", parent="loan.purpose", resumable=True)
LoanFacts("loan.facts", parent="loan.term", resumable=True)
LoanPin("loan.pin", parent="loan.facts", resumable=True)
MyLoans("loans", parent="main")
LoanDetail("loan", parent="loans")
WithdrawLoan("loan.withdraw", parent="loan")
HowToRepay("repay", parent="main")
RepayAmount("repay.amount", parent="repay", resumable=True)
MyAccount("account", parent="main")

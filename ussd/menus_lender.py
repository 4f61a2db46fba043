"""The lender's menus: browse listed loans a page at a time, see one in full and
pledge with a PIN (the code to confirm goes by SMS), my pledges, wallet and withdrawal."""
from __future__ import annotations

from typing import Any

from core.errors import InsufficientFunds
from core.models import PledgeStatus
from core.phones import local
from core.pledges import check_pledge_amount, pledge_bounds
from core.queries import LoanView
from core.reputation import agent_words
from ussd.lists import Paged
from ussd.menus_borrower import weeks
from ussd.nodes import Info, Node, Outcome, Reask, fmt, menu, pick, read_amount, t
from ussd.port import Port
from ussd.screen import Screen, fit
from ussd.state import State


def record(st: State, loan: LoanView) -> str:
    """The borrower's record in words: a first loan, or how many were repaid on time."""
    if not loan.borrower_repaid:
        return t(st, "ussd.lend.first")
    return t(st, "ussd.lend.record", on_time=loan.borrower_on_time, repaid=loan.borrower_repaid)


def loan_parts(st: State, port: Port, loan: LoanView) -> list[str]:
    """A listed loan in whole parts, the most telling first: who, where, what for, how
    much, how far funded, their record, their agent's record."""
    purpose = t(st, f"purpose.{loan.purpose}")  # a menu label, here mid-line
    return [loan.borrower_first_name, loan.borrower_place or "", purpose[:1].lower() + purpose[1:],
            fmt(port, loan.amount), t(st, "ussd.lend.funded", percent=loan.funded_percent),
            record(st, loan), agent_words(loan.agent, st.lang)]


def phone_at_home(st: State, port: Port) -> str:
    return local(st.phone, port.settings.app.default_region)


class Browse(Paged):
    """Loans waiting for lenders, soonest deadline first; pick one to see it in full."""

    empty_key = "ussd.lend.none"
    choosable = True

    def rows(self, st: State, port: Port, offset: int, limit: int) -> list[Any]:
        assert st.caller is not None
        return port.listed(offset=offset, limit=limit, exclude=st.caller.id)

    def line(self, st: State, port: Port, row: Any, room: int) -> str:
        return fit(loan_parts(st, port, row), room)

    def key_of(self, row: Any) -> Any:
        return row.number

    def chosen(self, st: State, port: Port, picked: Any) -> Outcome:
        assert st.caller is not None
        loan, available = port.pledge_offer(st.caller.id, picked)
        if loan.open_amount <= 0:
            raise Reask("ussd.lend.closed", number=loan.number)
        st.data["loan"] = picked
        low, _ = pledge_bounds(port.settings, open_amount=loan.open_amount,
                               available=available)
        return "lend.empty" if available < low else "lend.amount"


class PledgeAmount(Node):
    """The loan in full, and the amount to lend. The wallet's balance shows only once
    the PIN was typed this session."""

    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        loan, available = port.pledge_offer(st.caller.id, st.data["loan"])
        st.data.update(open=loan.open_amount, available=available,
                       name=loan.borrower_first_name)
        if loan.open_amount <= 0:  # fully pledged since it was picked
            st.data["blocked"] = True
            return Screen(t(st, "ussd.lend.closed", number=loan.number) + "\n"
                          + t(st, "ussd.nav.back"))
        ask = (t(st, "ussd.lend.amount_free", available=fmt(port, available))
               if st.unlocked else t(st, "ussd.lend.amount"))
        needed = t(st, "ussd.lend.needed", open=fmt(port, loan.open_amount))
        room = port.settings.ussd.max_chars - len("CON ") - len(ask) - len(needed) - 2
        shown = loan_parts(st, port, loan)
        parts = [*shown[:5], weeks(st, loan.term_weeks), *shown[5:]]
        return Screen(title=fit(parts, room) + "\n" + needed, body=ask)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        if st.data.get("blocked"):
            return "lend"
        amount = read_amount(value, port)
        try:
            check_pledge_amount(port.settings, amount, open_amount=int(st.data["open"]),
                                available=int(st.data["available"]), number=st.data["loan"])
        except InsufficientFunds:
            if st.unlocked:
                raise
            raise Reask("ussd.lend.short", paybill=port.settings.payments.paybill) from None
        st.data["amount"] = amount
        return "lend.pin"


class EmptyWallet(Info):
    """Nothing free to lend: how to top up, then back to the loans."""

    def show(self, st: State, port: Port) -> Screen:
        body = t(st, "ussd.lend.empty_wallet", paybill=port.settings.payments.paybill,
                 phone=phone_at_home(st, port))
        return Screen(body + "\n" + t(st, "ussd.nav.back"))


class PledgePin(Node):
    secret_input = True

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.lend.pin", amount=fmt(port, st.data["amount"]),
                        name=st.data["name"], number=st.data["loan"]))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        amount, number = int(st.data["amount"]), str(st.data["loan"])
        port.pledge(member_id=st.caller.id, number=number, amount=amount, pin=value[:12],
                    key=st.flow_key(f"pledge:{number}:{amount}"))
        return Screen(t(st, "ussd.lend.done", amount=fmt(port, amount), number=number),
                      end=True)


class MyPledges(Paged):
    empty_key = "ussd.pledges.none"

    def rows(self, st: State, port: Port, offset: int, limit: int) -> list[Any]:
        assert st.caller is not None
        return port.pledges_of(st.caller.id, offset=offset, limit=limit)

    def line(self, st: State, port: Port, row: Any, room: int) -> str:
        status = t(st, f"ussd.pledge.{row.status}")
        if row.status == PledgeStatus.POSTED:
            status = t(st, "ussd.pledge.repaid", repaid=fmt(port, row.repaid),
                       entitled=fmt(port, row.entitled))
        return t(st, "ussd.pledge.line", number=row.loan_number, amount=fmt(port, row.amount),
                 status=status)


class Portfolio(Info):
    """What the lender lent, got back, is late and was lost (core/reputation.py): an
    item of the wallet's menu, so behind the same PIN."""

    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        mine = port.portfolio(st.caller.id)
        if not mine.loans:
            return Screen(t(st, "ussd.portfolio.none") + "\n" + t(st, "ussd.nav.back"))
        body = t(st, "ussd.portfolio.body", loans=mine.loans, lent=fmt(port, mine.lent),
                 back=fmt(port, mine.got_back), to_come=fmt(port, mine.to_come),
                 late=fmt(port, mine.late), lost=fmt(port, mine.lost))
        return Screen(body + "\n" + t(st, "ussd.nav.back"))


class Wallet(Node):
    """Shown after the PIN, once a session."""

    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        view = port.account(st.caller.id)
        st.data["available"] = view.wallet_available
        title = t(st, "ussd.wallet.balance", balance=fmt(port, view.wallet_balance),
                  available=fmt(port, view.wallet_available), held=fmt(port, view.held))
        labels = [t(st, "ussd.wallet.withdraw"), t(st, "ussd.wallet.topup"),
                  t(st, "ussd.wallet.portfolio")]
        return menu(st, title, labels)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        chosen = pick(value, 3)
        if chosen == 2:
            return "portfolio"
        if chosen == 1:
            return "topup"
        least = port.settings.minor(port.settings.payouts.min_withdrawal)
        if int(st.data.get("available", 0)) < least:
            raise Reask("ussd.wallet.too_little", min=fmt(port, least))
        return "wallet.amount"


class WithdrawAmount(Node):
    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.wallet.amount", available=fmt(port, st.data["available"])))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        amount = read_amount(value, port)
        if amount > int(st.data["available"]):
            raise Reask("wallet.insufficient", available=fmt(port, int(st.data["available"])))
        st.data["amount"] = amount
        return "wallet.pin"


class WithdrawPin(Node):
    secret_input = True

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.wallet.pin", amount=fmt(port, st.data["amount"]),
                        phone=phone_at_home(st, port)))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        amount = int(st.data["amount"])
        port.withdraw(member_id=st.caller.id, amount=amount, pin=value[:12],
                      key=st.flow_key(f"withdraw:{amount}"))
        return Screen(t(st, "ussd.wallet.sent", amount=fmt(port, amount)), end=True)


class TopUp(Info):
    def show(self, st: State, port: Port) -> Screen:
        body = t(st, "ussd.wallet.topup_how", paybill=port.settings.payments.paybill,
                 phone=phone_at_home(st, port))
        return Screen(body + "\n" + t(st, "ussd.nav.back"))


Browse("lend", parent="main")
PledgeAmount("lend.amount", parent="lend", resumable=True)
EmptyWallet("lend.empty", parent="lend")
PledgePin("lend.pin", parent="lend.amount", resumable=True)
MyPledges("pledges", parent="main")
Portfolio("portfolio", parent="wallet")
Wallet("wallet", parent="main")
WithdrawAmount("wallet.amount", parent="wallet", resumable=True)
WithdrawPin("wallet.pin", parent="wallet.amount", resumable=True)
TopUp("topup", parent="wallet")

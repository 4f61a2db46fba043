"""The lender's menus: browse listed loans a page at a time, pledge with a PIN (the
code to confirm goes by SMS), my pledges, wallet and withdrawal."""
from __future__ import annotations

from typing import Any

from core.errors import InsufficientFunds
from core.models import PledgeStatus
from core.pledges import check_pledge_amount, pledge_bounds
from core.queries import LoanView
from ussd.menus_borrower import Paged
from ussd.nodes import NAV_MORE, Info, Node, Outcome, Reask, fmt, menu, pick, read_amount, t
from ussd.nodes import template as template_of
from ussd.port import Port
from ussd.screen import Screen, shorten, squeeze
from ussd.state import State


def record(st: State, loan: LoanView) -> str:
    if not loan.borrower_repaid:
        return t(st, "ussd.lend.new")
    return t(st, "ussd.lend.record", on_time=loan.borrower_on_time, repaid=loan.borrower_repaid)


def loan_fields(st: State, port: Port, loan: LoanView) -> dict[str, str]:
    return {"name": loan.borrower_first_name, "place": loan.borrower_place or "-",
            "purpose": t(st, f"purpose.{loan.purpose}"), "amount": fmt(port, loan.amount),
            "percent": str(loan.funded_percent), "record": record(st, loan),
            "number": loan.number}


class Browse(Paged):
    empty_key = "ussd.lend.none"
    choosable = True

    def rows(self, st: State, port: Port, offset: int, limit: int) -> list[Any]:
        assert st.caller is not None
        rows = port.listed(offset=offset, limit=limit, exclude=st.caller.id)
        st.data["numbers"] = [loan.number for loan in rows[:limit - 1]]
        return rows

    def line(self, st: State, port: Port, n: int, row: Any, width: int) -> str:
        return squeeze(template_of(st, "ussd.lend.line"), width,
                       {"n": str(n), **loan_fields(st, port, row)},
                       ("name", "place", "purpose", "record"))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        if value == NAV_MORE:
            return super().answer(st, value, port)
        numbers = st.data.get("numbers") or []
        st.data["loan"] = numbers[pick(value, len(numbers))]
        return "lend.amount"


class PledgeAmount(Node):
    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        loan, available = port.pledge_offer(st.caller.id, st.data["loan"])
        st.data.update(open=loan.open_amount, available=available,
                       name=shorten(loan.borrower_first_name, 20))
        low, high = pledge_bounds(port.settings, open_amount=loan.open_amount,
                                  available=available)
        if high < low:
            key = "ussd.lend.closed" if loan.open_amount <= 0 else "ussd.lend.empty_wallet"
            return Screen(t(st, key, available=fmt(port, available), number=loan.number,
                            paybill=port.settings.payments.paybill), end=True)
        title = squeeze(template_of(st, "ussd.lend.detail"), 110, loan_fields(st, port, loan),
                        ("name", "place", "purpose", "record"))
        body = t(st, "ussd.lend.amount", open=fmt(port, loan.open_amount),
                 available=fmt(port, available))
        return Screen(title=title, body=body)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        amount = read_amount(value, port)
        check_pledge_amount(port.settings, amount, open_amount=int(st.data["open"]),
                            available=int(st.data["available"]), number=st.data["loan"])
        st.data["amount"] = amount
        return "lend.pin"


class PledgePin(Node):
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

    def line(self, st: State, port: Port, n: int, row: Any, width: int) -> str:
        status = t(st, f"ussd.pledge.{row.status}")
        if row.status == PledgeStatus.POSTED:
            status = t(st, "ussd.pledge.repaid", repaid=fmt(port, row.repaid))
        return squeeze("{number} {amount} {status}", width,
                       {"number": row.loan_number, "amount": fmt(port, row.amount),
                        "status": status}, ("status",))


class Wallet(Node):
    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        view = port.account(st.caller.id)
        st.data["available"] = view.wallet_available
        title = t(st, "ussd.wallet.balance", balance=fmt(port, view.wallet_balance),
                  available=fmt(port, view.wallet_available), held=fmt(port, view.held))
        labels = [t(st, "ussd.wallet.withdraw"), t(st, "ussd.wallet.topup")]
        return menu(st, title, labels)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        if pick(value, 2) == 1:
            return "topup"
        if int(st.data.get("available", 0)) <= 0:
            raise InsufficientFunds(available=fmt(port, 0))
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
    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.wallet.pin", amount=fmt(port, st.data["amount"]),
                        phone=st.phone))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        amount = int(st.data["amount"])
        port.withdraw(member_id=st.caller.id, amount=amount, pin=value[:12],
                      key=st.flow_key(f"withdraw:{amount}"))
        return Screen(t(st, "ussd.wallet.sent", amount=fmt(port, amount)), end=True)


class TopUp(Info):
    def show(self, st: State, port: Port) -> Screen:
        body = t(st, "ussd.wallet.topup_how", paybill=port.settings.payments.paybill,
                 phone=st.phone)
        return Screen(body + "\n" + t(st, "ussd.nav.back"))


Browse("lend", parent="main")
PledgeAmount("lend.amount", parent="lend", resumable=True)
PledgePin("lend.pin", parent="lend.amount", resumable=True)
MyPledges("pledges", parent="main")
Wallet("wallet", parent="main")
WithdrawAmount("wallet.amount", parent="wallet", resumable=True)
WithdrawPin("wallet.pin", parent="wallet.amount", resumable=True)
TopUp("topup", parent="wallet")

"""Where a session starts: the stranger's menu and self-registration, the terms and
PIN a member still owes, the main menu, settings (language, PIN, help) and resuming a
dropped session."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.errors import NotAllowed
from core.members import clean_name, clean_national_id, validate_pin
from core.messages import LANGUAGES, format_time
from ussd.nodes import (
    SHOW_CURRENT,
    Info,
    Node,
    Outcome,
    Reask,
    fmt,
    language_labels,
    menu,
    pick,
    pin_digest,
    root_of,
    t,
)
from ussd.port import Port
from ussd.screen import Screen
from ussd.state import State

# ---------------------------------------------------------------- main menu


@dataclass(frozen=True)
class Item:
    label: str  # message key
    target: str  # node
    role: str  # "" = everyone


MAIN_ITEMS = (
    Item("ussd.main.borrow", "loan.amount", "borrower"),
    Item("ussd.main.loans", "loans", "borrower"),
    Item("ussd.main.repay", "repay", "borrower"),
    Item("ussd.main.lend", "lend", "lender"),
    Item("ussd.main.pledges", "pledges", "lender"),
    Item("ussd.main.wallet", "wallet", "lender"),
    Item("ussd.main.agent", "agent", "agent"),
    Item("ussd.main.account", "account", ""),
    Item("ussd.main.settings", "settings", ""),
    Item("ussd.main.group", "inbox", ""),
)
# Entering these starts a flow that may move money: its idempotency key is fixed then.
FLOW_STARTS = ("loan.amount", "lend", "wallet", "repay")
# These end in the PIN, or show balances after it: a locked PIN is said at once.
NEEDS_PIN = ("loan.amount", "lend", "wallet", "account")
# Balances show only after the PIN, once a session, as on M-Pesa.
BEHIND_PIN = ("wallet", "account")


def helper(st: State) -> dict[str, str]:
    """Who helps the caller: their agent, or Harambee; and the number to call."""
    caller = st.caller
    assert caller is not None
    return {"who": caller.helper or t(st, "ussd.harambee"), "phone": caller.helper_phone}


def locked_until(st: State, port: Port) -> str:
    """When the caller's PIN unlocks, as the clock on the wall says it (HH:MM)."""
    assert st.caller is not None
    return format_time(datetime.fromisoformat(st.caller.locked_until)
                       .astimezone(port.settings.zone))


def main_items(st: State) -> list[Item]:
    caller = st.caller
    return [i for i in MAIN_ITEMS if not i.role or (caller is not None and caller.has(i.role))]


class Main(Node):
    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        labels = [t(st, i.label) for i in main_items(st)]
        name = st.caller.first_name
        waiting = st.caller.waiting  # counted when they dialled: no query a hop
        titles = ([t(st, "ussd.main.title_new", name=name, n=waiting),
                   t(st, "ussd.main.title_new_short", n=waiting)] if waiting
                  else [t(st, "ussd.main.title", name=name)])
        for title in titles:  # a long name is left out, never cut
            screen = menu(st, title, labels, back=False)
            if len(screen.payload()) <= port.settings.ussd.max_chars:
                return screen
        return menu(st, t(st, "ussd.harambee"), labels, back=False)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        item = main_items(st)[pick(value, len(main_items(st)))]
        if item.target in NEEDS_PIN and st.caller.locked(port.now()):
            return "locked"
        if item.target == "loan.amount":
            try:
                port.can_request(st.caller.id)
            except NotAllowed as exc:
                if exc.key != "member.not_verified":
                    raise
                return "pending"
        st.data = {}
        if item.target in FLOW_STARTS:
            st.begin_flow()
        if item.target in BEHIND_PIN and not st.unlocked:
            st.data["then"] = item.target
            return "gate"
        return item.target


Main("main")


class PinGate(Node):
    """The PIN before balances; once typed, the rest of the session trusts it."""

    secret_input = True

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.gate.pin"))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        port.check_pin(st.caller.id, value[:12])
        st.unlocked = True
        return str(st.data.pop("then", "main"))


PinGate("gate", parent="main")


class Locked(Node):
    """The first screen while the caller's PIN is locked: until when, and who helps."""

    def show(self, st: State, port: Port) -> Screen:
        return menu(st, t(st, "ussd.locked", until=locked_until(st, port), **helper(st)),
                    [t(st, "ussd.main.menu")], back=False)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        return "main"


Locked("locked", navigable=False)


class Pending(Node):
    """A member not yet verified asked to borrow: who verifies them, and how to reach
    them."""

    def show(self, st: State, port: Port) -> Screen:
        return menu(st, t(st, "ussd.pending", **helper(st)), [t(st, "ussd.main.menu")],
                    back=False)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        return "main"


Pending("pending", navigable=False)

# ---------------------------------------------------------------- strangers


class Stranger(Node):
    def show(self, st: State, port: Port) -> Screen:
        labels = [t(st, "ussd.stranger.register"), t(st, "ussd.stranger.how"),
                  t(st, "ussd.stranger.language")]
        return menu(st, t(st, "ussd.stranger.title"), labels, back=False)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        choice = pick(value, 3)
        if choice == 0:
            st.begin_flow()
            return "reg.name"
        return ("how", "lang")[choice - 1]


class HowItWorks(Info):
    def show(self, st: State, port: Port) -> Screen:
        loan = port.settings.loan
        body = t(st, "ussd.how.body", fee=loan.fee_percent,
                 limit=fmt(port, port.settings.minor(port.settings.credit.first_loan_limit)))
        return Screen(body + "\n" + t(st, "ussd.nav.back"))


class StrangerLanguage(Node):
    def show(self, st: State, port: Port) -> Screen:
        return menu(st, t(st, "ussd.lang.title"), language_labels(st))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        st.lang = LANGUAGES[pick(value, len(LANGUAGES))]
        return "stranger"


class Ask(Node):
    """A question answered by typing: `key` is the prompt, `read` cleans the answer
    (raising a DomainError with the reason) and stores it under `field`."""

    def __init__(self, name: str, *, key: str, field: str, next_node: str,
                 read: object, **kw: object) -> None:
        super().__init__(name, **kw)  # type: ignore[arg-type]
        self.key, self.field, self.next_node, self.read = key, field, next_node, read

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, self.key, length=port.settings.pin.length))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        st.data[self.field] = self.read(value[:60])  # type: ignore[operator]
        return self.next_node


class ChooseLanguage(Node):
    def __init__(self, name: str, *, next_node: str, **kw: object) -> None:
        super().__init__(name, **kw)  # type: ignore[arg-type]
        self.next_node = next_node

    def show(self, st: State, port: Port) -> Screen:
        return menu(st, t(st, "ussd.lang.title"), language_labels(st))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        st.lang = LANGUAGES[pick(value, len(LANGUAGES))]
        st.data["language"] = st.lang
        return self.next_node


class Terms(Node):
    """The terms in short: accept, or have the full terms sent by SMS."""

    def __init__(self, name: str, *, next_node: str, **kw: object) -> None:
        super().__init__(name, **kw)  # type: ignore[arg-type]
        self.next_node = next_node

    def show(self, st: State, port: Port) -> Screen:
        labels = [t(st, "ussd.terms.accept"), t(st, "ussd.terms.sms")]
        title = t(st, "ussd.terms.short", fee=port.settings.loan.fee_percent)
        return menu(st, title, labels, back=self.parent != "")

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        if pick(value, 2) == 1:
            port.send_terms(phone=st.phone, language=st.lang)
            raise Reask("ussd.terms.sent")
        if st.caller is not None and st.caller.pin:
            st.caller = port.accept_terms(st.caller.id, None)
            st.data = {}
            raise Reask("ussd.terms.done", node=root_of(st))
        if "flow" not in st.data:
            st.begin_flow()
        return self.next_node


class ChoosePin(Node):
    secret_input = True

    def __init__(self, name: str, *, next_node: str, **kw: object) -> None:
        super().__init__(name, **kw)  # type: ignore[arg-type]
        self.next_node = next_node

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.pin.choose", length=port.settings.pin.length))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        validate_pin(value, port.settings)
        if "flow" not in st.data:
            st.begin_flow()
        st.data["pin_digest"] = pin_digest(port, st, value)
        return self.next_node


class RepeatPin(Node):
    """The PIN typed again; on a match the use case runs in this same hop."""

    secret_input = True

    def __init__(self, name: str, *, first: str, **kw: object) -> None:
        super().__init__(name, **kw)  # type: ignore[arg-type]
        self.first = first

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.pin.again"))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        expected = st.data.pop("pin_digest", None)
        if expected is None or pin_digest(port, st, value) != expected:
            raise Reask("pin.mismatch", node=self.first)
        return self.done(st, value, port)

    def done(self, st: State, pin: str, port: Port) -> Outcome:
        raise NotImplementedError


class RegisterSelf(RepeatPin):
    def done(self, st: State, pin: str, port: Port) -> Outcome:
        # The same answer whether or not someone holds this ID: an agent settles it.
        st.caller = port.register_self(
            phone=st.phone, name=st.data["name"], national_id=st.data["national_id"],
            language=st.data.get("language", st.lang), pin=pin)
        return Screen(t(st, "ussd.reg.done", name=st.caller.first_name,
                        **helper(st)), end=True)


class AcceptTermsWithPin(RepeatPin):
    def done(self, st: State, pin: str, port: Port) -> Outcome:
        assert st.caller is not None
        st.caller = port.accept_terms(st.caller.id, pin)
        st.data = {}
        raise Reask("ussd.terms.done_pin", node=root_of(st))


Stranger("stranger")
HowItWorks("how", parent="stranger")
StrangerLanguage("lang", parent="stranger")
Ask("reg.name", key="ussd.reg.name", field="name", next_node="reg.id", read=clean_name,
    parent="stranger", resumable=True)
Ask("reg.id", key="ussd.reg.id", field="national_id", next_node="reg.lang",
    read=clean_national_id, parent="reg.name", resumable=True)
ChooseLanguage("reg.lang", next_node="reg.terms", parent="reg.id", resumable=True)
Terms("reg.terms", next_node="reg.pin", parent="reg.lang", resumable=True)
ChoosePin("reg.pin", next_node="reg.pin2", parent="reg.terms", resumable=True)
RegisterSelf("reg.pin2", first="reg.pin", parent="reg.pin")

# A member an agent registered accepts the terms and sets a PIN on their own phone.
Terms("terms", next_node="terms.pin")
ChoosePin("terms.pin", next_node="terms.pin2", parent="terms")
AcceptTermsWithPin("terms.pin2", first="terms.pin", parent="terms.pin")

# ---------------------------------------------------------------- settings


class Settings(Node):
    def show(self, st: State, port: Port) -> Screen:
        labels = [t(st, "ussd.settings.language"), t(st, "ussd.settings.pin"),
                  t(st, "ussd.settings.help")]
        return menu(st, t(st, "ussd.settings.title"), labels)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        target = ("settings.lang", "pin.old", "help")[pick(value, 3)]
        if target == "pin.old":
            st.begin_flow()
        return target


class SetLanguage(Node):
    def show(self, st: State, port: Port) -> Screen:
        return menu(st, t(st, "ussd.lang.title"), language_labels(st))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        lang = LANGUAGES[pick(value, len(LANGUAGES))]
        port.set_language(st.caller.id, lang)
        st.caller.language = st.lang = lang
        st.data = {}
        raise Reask("ussd.lang.done", node=root_of(st))


class OldPin(Node):
    secret_input = True

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.pin.old"))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        port.check_pin(st.caller.id, value[:12])
        st.data["pin_checked"] = True
        return "pin.new"


class ChangePin(RepeatPin):
    def done(self, st: State, pin: str, port: Port) -> Outcome:
        assert st.caller is not None
        if not st.data.pop("pin_checked", False):
            return "pin.old"
        port.change_pin(st.caller.id, pin)
        return Screen(t(st, "ussd.pin.changed"), end=True)


class Help(Info):
    def show(self, st: State, port: Port) -> Screen:
        body = t(st, "ussd.help.body", code=port.settings.ussd.service_code,
                 paybill=port.settings.payments.paybill, **helper(st))
        return Screen(body + "\n" + t(st, "ussd.nav.back"))


Settings("settings", parent="main")
SetLanguage("settings.lang", parent="settings")
OldPin("pin.old", parent="settings")
ChoosePin("pin.new", next_node="pin.again", parent="settings")
ChangePin("pin.again", first="pin.new", parent="settings")
Help("help", parent="settings")

# ---------------------------------------------------------------- resuming


class Resume(Node):
    def show(self, st: State, port: Port) -> Screen:
        labels = [t(st, "ussd.resume.continue"), t(st, "ussd.resume.restart")]
        return menu(st, t(st, "ussd.resume.title"), labels, back=False)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        choice = pick(value, 2)
        saved = State.from_dict(st.data["saved"])
        st.data = {}
        if choice == 1 or saved.node not in Node.registry:
            return root_of(st)
        st.data, st.page, st.lang = saved.data, saved.page, saved.lang
        st.node = saved.node
        return SHOW_CURRENT


Resume("resume", navigable=False)

"""The field agent's menus: register a member for someone else (a summary, then the
agent's PIN), verify a self-registered member (with the agent's PIN), look a member up."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from core.errors import DomainError
from core.members import clean_name, clean_national_id, clean_place
from core.messages import LANGUAGES, text
from core.models import MemberStatus
from core.phones import local, normalise
from ussd.menus_start import Ask
from ussd.nodes import Info, Node, Outcome, Reask, fmt, language_labels, menu, pick, t
from ussd.port import MemberCard, Port
from ussd.screen import Screen
from ussd.state import State


class Agent(Node):
    def show(self, st: State, port: Port) -> Screen:
        labels = [t(st, "ussd.agent.register"), t(st, "ussd.agent.verify"),
                  t(st, "ussd.agent.lookup"), t(st, "ussd.agent.group")]
        return menu(st, t(st, "ussd.agent.title"), labels)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        st.data = {}
        target = ("agent.phone", "verify.phone", "lookup.phone", "group.name")[pick(value, 4)]
        if target != "lookup.phone":
            st.begin_flow()
        return target


def read_phone(value: str, port: Port) -> str:
    return normalise(value[:32], port.settings.app.default_region)


def at_home(port: Port, phone: str) -> str:
    return local(phone, port.settings.app.default_region)


class NewMemberPhone(Node):
    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.agent.phone"))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        phone = read_phone(value, port)
        if port.find_member(phone) is not None:
            raise Reask("member.exists")
        st.data["phone"] = phone
        return "agent.name"


class NewMemberId(Ask):
    """The national ID, refused at once when another member already has it: the agent
    hears it before typing the rest."""

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        national_id = clean_national_id(value[:60])
        if port.national_id_taken(national_id):
            raise Reask("member.national_id_taken")
        st.data[self.field] = national_id
        return self.next_node


class NewMemberLanguage(Node):
    def show(self, st: State, port: Port) -> Screen:
        return menu(st, t(st, "ussd.agent.language"), language_labels(st))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        st.data["language"] = LANGUAGES[pick(value, len(LANGUAGES))]
        return "agent.summary"


class RegistrationSummary(Node):
    """Everything typed, read back before it is saved."""

    def show(self, st: State, port: Port) -> Screen:
        d = st.data
        title = t(st, "ussd.agent.summary", name=d["name"], phone=at_home(port, d["phone"]),
                  national_id=d["national_id"], place=d["place"],
                  language=text("ussd.lang.name", d["language"]))
        return menu(st, title, [t(st, "ussd.agent.save")])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        pick(value, 1)
        return "agent.pin"


class RegisterPin(Node):
    secret_input = True

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.agent.pin_register", name=st.data["name"]))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        d = st.data
        try:
            card = port.agent_register(agent_id=st.caller.id, phone=d["phone"], name=d["name"],
                                       national_id=d["national_id"], place=d["place"],
                                       language=d["language"], pin=value[:12])
        except DomainError as exc:
            if exc.key == "member.national_id_taken":  # taken since it was typed
                raise Reask(exc.key, node="agent.id") from None
            raise
        return Screen(t(st, "ussd.agent.registered", name=card.name,
                        phone=at_home(port, card.phone)), end=True)


def card_text(st: State, port: Port, card: MemberCard, key: str) -> str:
    """A member's card, whole: the longest name and place the product allows fit."""
    return t(st, key, name=card.name, phone=at_home(port, card.phone),
             national_id=card.national_id or t(st, "ussd.member.no_id"),
             place=card.place or t(st, "ussd.member.no_place"),
             status=t(st, f"ussd.member.{card.status}"),
             terms=t(st, "ussd.member.terms_yes" if card.terms else "ussd.member.terms_no"),
             limit=fmt(port, card.limit))


class FindMember(Node):
    """A member's phone for verifying or looking up."""

    def __init__(self, name: str, *, next_node: str, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.next_node = next_node

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.agent.member_phone"))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        card = port.find_member(read_phone(value, port))
        if card is None:
            raise Reask("member.not_found")
        if self.next_node == "verify.confirm" and card.status == MemberStatus.VERIFIED:
            raise Reask("member.already_verified")
        st.data["card"] = asdict(card)
        return self.next_node


class ConfirmVerify(Node):
    def show(self, st: State, port: Port) -> Screen:
        card = MemberCard(**st.data["card"])
        return menu(st, card_text(st, port, card, "ussd.member.short"),
                    [t(st, "ussd.agent.verify_yes")])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        pick(value, 1)
        return "verify.pin"


class VerifyPin(Node):
    secret_input = True

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.agent.pin_verify", name=st.data["card"]["name"]))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        card = port.verify(agent_id=st.caller.id, phone=st.data["card"]["phone"],
                           pin=value[:12])
        return Screen(t(st, "ussd.agent.verified", name=card.name), end=True)


class MemberCardScreen(Info):
    def show(self, st: State, port: Port) -> Screen:
        card = MemberCard(**st.data["card"])
        return Screen(card_text(st, port, card, "ussd.member.card") + "\n"
                      + t(st, "ussd.nav.back"))


Agent("agent", parent="main")
NewMemberPhone("agent.phone", parent="agent", resumable=True)
Ask("agent.name", key="ussd.agent.name", field="name", next_node="agent.id",
    read=clean_name, parent="agent.phone", resumable=True)
NewMemberId("agent.id", key="ussd.agent.id", field="national_id", next_node="agent.place",
            read=clean_national_id, parent="agent.name", resumable=True)
Ask("agent.place", key="ussd.agent.place", field="place", next_node="agent.lang",
    read=clean_place, parent="agent.id", resumable=True)
NewMemberLanguage("agent.lang", parent="agent.place", resumable=True)
RegistrationSummary("agent.summary", parent="agent.lang", resumable=True)
RegisterPin("agent.pin", parent="agent.summary", resumable=True)
FindMember("verify.phone", next_node="verify.confirm", parent="agent")
ConfirmVerify("verify.confirm", parent="verify.phone", resumable=True)
VerifyPin("verify.pin", parent="verify.confirm", resumable=True)
FindMember("lookup.phone", next_node="lookup.card", parent="agent")
MemberCardScreen("lookup.card", parent="lookup.phone")

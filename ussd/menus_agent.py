"""The field agent's menus: register a member for someone else, verify a
self-registered member, look a member up."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from core.errors import DomainError
from core.members import clean_name, clean_national_id, clean_place
from core.messages import LANGUAGES
from core.models import MemberStatus
from core.phones import normalise
from ussd.menus_start import Ask
from ussd.nodes import Info, Node, Outcome, Reask, fmt, language_labels, menu, pick, t
from ussd.nodes import template as template_of
from ussd.port import MemberCard, Port
from ussd.screen import Screen, shorten, squeeze
from ussd.state import State


class Agent(Node):
    def show(self, st: State, port: Port) -> Screen:
        labels = [t(st, "ussd.agent.register"), t(st, "ussd.agent.verify"),
                  t(st, "ussd.agent.lookup")]
        return menu(st, t(st, "ussd.agent.title"), labels)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        st.data = {}
        return ("agent.phone", "verify.phone", "lookup.phone")[pick(value, 3)]


def read_phone(value: str, port: Port) -> str:
    return normalise(value[:32], port.settings.app.default_region)


class NewMemberPhone(Node):
    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.agent.phone"))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        phone = read_phone(value, port)
        if port.find_member(phone) is not None:
            raise Reask("member.exists")
        st.data["phone"] = phone
        return "agent.name"


class NewMemberLanguage(Node):
    def show(self, st: State, port: Port) -> Screen:
        return menu(st, t(st, "ussd.agent.language"), language_labels(st))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        language = LANGUAGES[pick(value, len(LANGUAGES))]
        d = st.data
        try:
            card = port.agent_register(agent_id=st.caller.id, phone=d["phone"], name=d["name"],
                                       national_id=d["national_id"], place=d["place"],
                                       language=language)
        except DomainError as exc:
            if exc.key == "member.national_id_taken":
                raise Reask(exc.key, node="agent.id") from None
            raise
        return Screen(t(st, "ussd.agent.registered", name=shorten(card.name, 40),
                        phone=card.phone), end=True)


def card_text(st: State, port: Port, card: MemberCard, key: str, width: int) -> str:
    """A member's card in at most `width` characters (long names and places shortened)."""
    fields = {"name": card.name, "phone": card.phone, "national_id": card.national_id or "-",
              "place": card.place or "-", "status": t(st, f"ussd.member.{card.status}"),
              "terms": t(st, "ussd.member.terms_yes" if card.terms else "ussd.member.terms_no"),
              "limit": fmt(port, card.limit)}
    return squeeze(template_of(st, key), width, fields, ("place", "name", "terms", "status"))


def room(port: Port, *below: str) -> int:
    """Characters left for a screen's top part above the `below` lines."""
    return port.settings.ussd.max_chars - 4 - sum(len(line) + 1 for line in below)


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
        labels = [t(st, "ussd.agent.verify_yes")]
        below = menu(st, "", labels).body
        return menu(st, card_text(st, port, card, "ussd.member.short", room(port, below)),
                    labels)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        pick(value, 1)
        card = port.verify(agent_id=st.caller.id, phone=st.data["card"]["phone"])
        return Screen(t(st, "ussd.agent.verified", name=shorten(card.name, 40)), end=True)


class MemberCardScreen(Info):
    def show(self, st: State, port: Port) -> Screen:
        card = MemberCard(**st.data["card"])
        back = t(st, "ussd.nav.back")
        return Screen(card_text(st, port, card, "ussd.member.card", room(port, back)) + "\n"
                      + back)


Agent("agent", parent="main")
NewMemberPhone("agent.phone", parent="agent", resumable=True)
Ask("agent.name", key="ussd.agent.name", field="name", next_node="agent.id",
      read=clean_name, parent="agent.phone", resumable=True)
Ask("agent.id", key="ussd.agent.id", field="national_id", next_node="agent.place",
      read=clean_national_id, parent="agent.name", resumable=True)
Ask("agent.place", key="ussd.agent.place", field="place", next_node="agent.lang",
      read=clean_place, parent="agent.id", resumable=True)
NewMemberLanguage("agent.lang", parent="agent.place", resumable=True)
FindMember("verify.phone", next_node="verify.confirm", parent="agent")
ConfirmVerify("verify.confirm", parent="verify.phone", resumable=True)
FindMember("lookup.phone", next_node="lookup.card", parent="agent")
MemberCardScreen("lookup.card", parent="lookup.phone")

"""Groups and what waits for a member's answer: "Group & requests" lists group
invitations, guarantees asked of them, the choice on a partly funded loan and (for an
agent) pauses to approve, then their group; an agent forms a group; a borrower asks a
member of their group to guarantee a listed loan."""
from __future__ import annotations

from typing import Any

from core.groups import MIN_MEMBERS, clean_group_name, clean_village
from core.pauses import REASONS
from core.waiting import CHOICE, GROUP, GUARANTEE, INVITE, PAUSE, Waiting
from ussd.lists import Paged
from ussd.menus_agent import read_phone
from ussd.menus_borrower import LoanFacts, day, weeks
from ussd.menus_start import Ask, helper
from ussd.nodes import Node, Outcome, Reask, fmt, menu, pick, read_amount, t
from ussd.port import Port
from ussd.screen import Screen
from ussd.state import State

MAX_GROUP = 30

# ---------------------------------------------------------------- group & requests


def inbox_line(st: State, port: Port, row: Waiting) -> str:
    return t(st, f"ussd.inbox.{row.kind}", name=row.name, loan=row.loan)


class Inbox(Paged):
    """What waits for the caller's answer, then their group."""

    empty_key = "ussd.inbox.none"
    choosable = True

    def rows(self, st: State, port: Port, offset: int, limit: int) -> list[Any]:
        assert st.caller is not None
        return port.waiting(st.caller.id)[offset:offset + limit]

    def line(self, st: State, port: Port, row: Any, room: int) -> str:
        return inbox_line(st, port, row)

    def key_of(self, row: Any) -> Any:
        return [row.kind, row.ref]

    def chosen(self, st: State, port: Port, picked: Any) -> Outcome:
        kind, ref = picked
        st.data = {"ref": ref}
        if kind in (GUARANTEE, CHOICE, PAUSE):
            st.begin_flow()
            st.data["ref"] = ref
        return {INVITE: "invite", GUARANTEE: "guarantee", CHOICE: "choice", PAUSE: "pause.review",
                GROUP: "group.view"}[kind]


class Invite(Node):
    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        found = port.invitation(st.caller.id, int(st.data["ref"]))
        st.data["group"] = found.name
        labels = [t(st, "ussd.invite.join"), t(st, "ussd.invite.no")]
        values = {"agent": found.agent, "group": found.name, "village": found.village}
        for key in ("ussd.invite.ask", "ussd.invite.ask_short"):
            screen = menu(st, t(st, key, **values), labels)
            if len(screen.payload()) <= port.settings.ussd.max_chars:
                break
        return screen

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        join = pick(value, 2) == 0
        port.answer_invitation(st.caller.id, int(st.data["ref"]), join)
        key = "ussd.invite.joined" if join else "ussd.invite.declined"
        return Screen(t(st, key, group=st.data.get("group", "")), end=True)


class GuaranteeAsk(Node):
    """The exact exposure, in plain words, before the guarantor answers."""

    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        request = port.guarantee_request(st.caller.id, int(st.data["ref"]))
        st.data.update(loan=request.loan, amount=request.amount)
        labels = [t(st, "ussd.guarantee.agree"), t(st, "ussd.guarantee.decline")]
        values = {"loan": request.loan, "amount": fmt(port, request.amount)}
        screen = menu(st, t(st, "ussd.guarantee.ask", borrower=request.borrower, **values),
                      labels)
        if len(screen.payload()) > port.settings.ussd.max_chars:  # a long name: left out
            screen = menu(st, t(st, "ussd.guarantee.ask_short", **values), labels)
        return screen

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        if pick(value, 2) == 0:
            return "guarantee.pin"
        port.decline_guarantee(st.caller.id, int(st.data["ref"]))
        return Screen(t(st, "ussd.guarantee.declined"), end=True)


class GuaranteePin(Node):
    secret_input = True

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.guarantee.pin", amount=fmt(port, int(st.data["amount"])),
                        loan=st.data["loan"]))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        held = port.consent_guarantee(st.caller.id, int(st.data["ref"]), value[:12])
        return Screen(t(st, "ussd.guarantee.held", amount=fmt(port, held),
                        loan=st.data["loan"]), end=True)


class GroupView(Paged):
    """The caller's group: for its officer, each member's loan and who is behind; for
    any other member, who is in it."""

    empty_key = "group.none"

    def rows(self, st: State, port: Port, offset: int, limit: int) -> list[Any]:
        assert st.caller is not None
        seen = port.group_overview(st.caller.id)
        return list(seen.members[offset:offset + limit])

    def line(self, st: State, port: Port, row: Any, room: int) -> str:
        name = row.name.split()[0]
        if row.status == "invited":
            return t(st, "ussd.group.invited", name=name)
        if not st.data.get("officer"):
            return t(st, "ussd.group.member", name=name)
        if not row.loan:
            return t(st, "ussd.group.no_loan", name=name)
        if row.behind:
            return t(st, "ussd.group.behind", name=name, loan=row.loan,
                     amount=fmt(port, row.behind))
        return t(st, "ussd.group.on_time", name=name, loan=row.loan)

    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        st.data["officer"] = port.is_officer(st.caller.id)
        return super().show(st, port)


# ---------------------------------------------------------------- forming a group


class GroupPhone(Node):
    """Members by phone, one a hop; the first is the officer. From the third on, `1`
    says that is all."""

    def show(self, st: State, port: Port) -> Screen:
        phones = st.data.setdefault("phones", [])
        n = len(phones) + 1
        key = "ussd.group.phone_more" if len(phones) >= MIN_MEMBERS else "ussd.group.phone"
        return Screen(t(st, key, n=n))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        phones: list[str] = st.data.setdefault("phones", [])
        if value == "1" and len(phones) >= MIN_MEMBERS:
            return "group.summary"
        phone = read_phone(value, port)
        card = port.find_member(phone)
        if card is None:
            raise Reask("member.not_found")
        if phone in phones:
            raise Reask("ussd.group.taken")
        phones.append(phone)
        if len(phones) == 1:
            st.data["officer"] = card.name
        if len(phones) >= MAX_GROUP:
            return "group.summary"
        return "group.phone"


class GroupSummary(Node):
    def show(self, st: State, port: Port) -> Screen:
        d = st.data
        title = t(st, "ussd.group.summary", name=d["name"], village=d["village"],
                  count=len(d["phones"]), officer=d["officer"])
        return menu(st, title, [t(st, "ussd.group.form")])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        pick(value, 1)
        return "group.pin"


class GroupPin(Node):
    secret_input = True

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.group.pin", name=st.data["name"]))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        d = st.data
        name = port.form_group(agent_id=st.caller.id, name=d["name"], village=d["village"],
                               phones=list(d["phones"]), pin=value[:12],
                               key=st.flow_key("group"))
        return Screen(t(st, "ussd.group.formed", name=name), end=True)


# ---------------------------------------------------------------- asking a guarantor


class GuarantorPhone(Node):
    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.guarantor.phone", loan=st.data["loan"]))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        phone = read_phone(value, port)
        card = port.find_member(phone)
        if card is None:
            raise Reask("member.not_found")
        st.data.update(phone=phone, name=card.name.split()[0])
        return "guarantor.amount"


class GuarantorAmount(Node):
    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.guarantor.amount",
                        amount=fmt(port, int(st.data.get("loan_amount", 0)))))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        st.data["amount"] = read_amount(value, port)
        return "guarantor.confirm"


class GuarantorConfirm(Node):
    def show(self, st: State, port: Port) -> Screen:
        d = st.data
        return menu(st, t(st, "ussd.guarantor.confirm", name=d["name"],
                          amount=fmt(port, int(d["amount"])), loan=d["loan"]),
                    [t(st, "ussd.guarantor.send")])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        pick(value, 1)
        d = st.data
        port.ask_guarantee(member_id=st.caller.id, number=d["loan"], phone=d["phone"],
                           amount=int(d["amount"]))
        return Screen(t(st, "ussd.guarantor.asked", name=d["name"]), end=True)


Inbox("inbox", parent="main")
Invite("invite", parent="inbox")
GuaranteeAsk("guarantee", parent="inbox", resumable=True)
GuaranteePin("guarantee.pin", parent="guarantee", resumable=True)
GroupView("group.view", parent="inbox")
Ask("group.name", key="ussd.group.name", field="name", next_node="group.village",
    read=clean_group_name, parent="agent", resumable=True)
Ask("group.village", key="ussd.group.village", field="village", next_node="group.phone",
    read=clean_village, parent="group.name", resumable=True)
GroupPhone("group.phone", parent="group.village", resumable=True)
GroupSummary("group.summary", parent="group.phone", resumable=True)
GroupPin("group.pin", parent="group.summary", resumable=True)
GuarantorPhone("guarantor.phone", parent="loan")
GuarantorAmount("guarantor.amount", parent="guarantor.phone")
GuarantorConfirm("guarantor.confirm", parent="guarantor.amount")


# ---------------------------------------------------------------- partly funded: a choice


class ChoiceAsk(Node):
    """Take what was pledged, wait once more, or cancel."""

    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        found = port.choice(st.caller.id, str(st.data["ref"]))
        options = (["take"] if found.facts is not None else []) + (
            ["wait"] if found.can_extend else []) + ["cancel"]
        st.data["options"] = options
        if found.facts is not None:
            facts = found.facts
            st.data.update(amount=facts.amount, fee=facts.cost, total=facts.total,
                           installment=facts.installment, last=facts.last_installment,
                           count=facts.count, term=facts.term_weeks)
        labels = [t(st, f"ussd.choice.{o}", pledged=fmt(port, found.pledged),
                    days=port.settings.trust.extend_days) for o in options]
        return menu(st, t(st, "ussd.choice.ask", loan=found.loan,
                          pledged=fmt(port, found.pledged), amount=fmt(port, found.amount)),
                    labels)

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        options = st.data.get("options") or ["cancel"]
        chosen = options[pick(value, len(options))]
        number = str(st.data["ref"])
        if chosen == "take":
            return "choice.facts"
        if chosen == "wait":
            deadline = port.extend(st.caller.id, number)
            return Screen(t(st, "ussd.choice.extended", loan=number,
                            deadline=day(port, deadline)), end=True)
        port.cancel_loan(member_id=st.caller.id, number=number)
        return Screen(t(st, "ussd.choice.cancelled", loan=number), end=True)


class ChoiceFacts(LoanFacts):
    """The new key facts of taking what was pledged; accepting asks the PIN."""

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        if pick(value, 2) == 0:
            return "choice.pin"
        return "choice"


class ChoicePin(Node):
    secret_input = True

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.choice.pin", amount=fmt(port, int(st.data["amount"]))))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        number = str(st.data["ref"])
        amount = port.take_pledged(member_id=st.caller.id, number=number, pin=value[:12])
        return Screen(t(st, "ussd.choice.taken", loan=number, amount=fmt(port, amount)),
                      end=True)


# ---------------------------------------------------------------- hardship pauses


class PauseWeeks(Node):
    def show(self, st: State, port: Port) -> Screen:
        return menu(st, t(st, "ussd.pause.weeks"),
                    [weeks(st, n) for n in port.settings.trust.pause_weeks])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        choices = port.settings.trust.pause_weeks
        st.data["weeks"] = choices[pick(value, len(choices))]
        return "pause.reason"


class PauseReason(Node):
    def show(self, st: State, port: Port) -> Screen:
        return menu(st, t(st, "ussd.pause.reason"),
                    [t(st, f"pause.reason.{r}").capitalize() for r in REASONS])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        st.data["reason"] = REASONS[pick(value, len(REASONS))]
        return "pause.confirm"


class PauseConfirm(Node):
    def show(self, st: State, port: Port) -> Screen:
        d = st.data
        return menu(st, t(st, "ussd.pause.confirm", who=helper(st)["who"], loan=d["loan"],
                          weeks=weeks(st, int(d["weeks"]))), [t(st, "ussd.pause.send")])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        pick(value, 1)
        d = st.data
        port.ask_pause(member_id=st.caller.id, number=str(d["loan"]), weeks=int(d["weeks"]),
                       reason=str(d["reason"]))
        return Screen(t(st, "ussd.pause.asked", who=helper(st)["who"]), end=True)


class PauseReview(Node):
    """An agent reads a member's request for a pause, then approves (PIN) or declines."""

    def show(self, st: State, port: Port) -> Screen:
        assert st.caller is not None
        found = port.pause_request(st.caller.id, int(st.data["ref"]))
        st.data["name"] = found.name
        title = t(st, "ussd.pause.review", name=found.name, loan=found.loan,
                  weeks=weeks(st, found.weeks), reason=t(st, f"pause.reason.{found.reason}"))
        return menu(st, title, [t(st, "ussd.pause.approve"), t(st, "ussd.pause.decline")])

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        if pick(value, 2) == 0:
            return "pause.pin"
        port.answer_pause(agent_id=st.caller.id, pause_id=int(st.data["ref"]), approve=False,
                          pin=None)
        return Screen(t(st, "ussd.pause.declined", name=st.data.get("name", "")), end=True)


class PausePin(Node):
    secret_input = True

    def show(self, st: State, port: Port) -> Screen:
        return Screen(t(st, "ussd.pause.pin"))

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        assert st.caller is not None
        port.answer_pause(agent_id=st.caller.id, pause_id=int(st.data["ref"]), approve=True,
                          pin=value[:12])
        return Screen(t(st, "ussd.pause.approved", name=st.data.get("name", "")), end=True)


ChoiceAsk("choice", parent="inbox", resumable=True)
ChoiceFacts("choice.facts", parent="choice", resumable=True)
ChoicePin("choice.pin", parent="choice.facts", resumable=True)
PauseWeeks("pause.weeks", parent="loan")
PauseReason("pause.reason", parent="pause.weeks")
PauseConfirm("pause.confirm", parent="pause.reason")
PauseReview("pause.review", parent="inbox", resumable=True)
PausePin("pause.pin", parent="pause.review", resumable=True)

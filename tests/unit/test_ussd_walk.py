"""Walk the whole USSD state graph, in both languages, with the longest values the
product allows, and check every screen a handset can be shown."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from core.config import load_settings
from core.messages import CATALOG, is_gsm7
from tests.fake_port import (
    LOCKED_PIN,
    LONG_FIRST,
    LONG_GROUP,
    LONG_NAME,
    LONG_PLACE,
    NOW,
    PIN,
    FakePort,
)
from ussd.machine import NODES, resume, step
from ussd.screen import Screen
from ussd.state import Caller, State

SETTINGS = load_settings(env={})
PHONE = "+254712345678"
INPUTS = [
    "", "1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "00", "98", "99", "10", "-1",
    "x" * 300, "ñ☃ 😀", "*#", "1*2", "#", " 1 ", LONG_NAME, LONG_PLACE, "Jo", "12345678",
    "11111111", "0712345678", "0711000001", "0711000002", "0711000003", "0722", LONG_GROUP,
    "49999.99", "50000", "500", "1.5k",
    "0.001", "1000000000000000000", PIN, LOCKED_PIN, "9876", "1234",
]


def full_member(lang: str, *, terms: bool = True, pin: bool = True,
                locked: bool = False, status: str = "verified") -> Caller:
    return Caller(id=1, first_name=LONG_FIRST, roles=["agent", "borrower", "lender"],
                  language=lang, status=status, terms=terms, pin=pin,
                  limit=SETTINGS.minor(SETTINGS.credit.cap),
                  locked_until=(NOW + timedelta(hours=1)).isoformat() if locked else "",
                  helper=LONG_FIRST, helper_phone="0712 345678", waiting=2)


def _words(text: str) -> set[str]:
    return {word.lower() for word in re.findall(r"[A-Za-z]+", text)}


# Every word a screen may hold: the catalogues' own words and the values filled in. A
# word cut short ("Wanji.", "kwa.") is in neither, and fails the walk.
VOCABULARY = set().union(
    *(_words(re.sub(r"{[a-z_]+}", " ", text)) for texts in CATALOG.values()
      for text in texts.values()),
    *(_words(value) for value in (LONG_NAME, LONG_FIRST, LONG_PLACE, LONG_GROUP, *INPUTS)),
    _words(SETTINGS.app.currency_label + " CON END"))
# Values of several words are shown whole or not at all.
WHOLE = (LONG_NAME, LONG_PLACE, LONG_GROUP)


def check_nothing_cut(payload: str, where: str) -> None:
    strange = sorted(_words(payload) - VOCABULARY)
    assert not strange, f"{where}: words cut short or unknown {strange}\n{payload}"
    for value in WHOLE:  # a first name alone is fine; two words of it mean all of it
        head = " ".join(value.split()[:2])
        if head in payload:
            assert value in payload, f"{where}: {value!r} cut short\n{payload}"


def check(screen: Screen, where: str) -> None:
    payload = screen.payload()
    check_nothing_cut(payload, where)
    assert payload.startswith(("CON ", "END ")), where
    assert len(payload) <= SETTINGS.ussd.max_chars, f"{where}: {len(payload)} chars\n{payload}"
    assert is_gsm7(payload), f"{where}: not GSM-7\n{payload}"
    assert "{" not in payload, f"{where}: unfilled placeholder\n{payload}"
    for lang in ("en", "sw"):
        assert CATALOG[lang]["error.generic"] not in payload, f"{where}: a text failed\n{payload}"
    assert payload.strip() not in ("CON", "END"), where


# What a screen's words depend on besides the node: explored once per distinct value.
SHOWN = {"loan.facts": ("amount", "term"), "loan.pin": ("amount", "term"),
         "lend.pin": ("amount", "loan"), "wallet.pin": ("amount",), "loan": ("loan",),
         "loan.withdraw": ("loan",), "lend.amount": ("loan",), "pin.again": ("pin_checked",),
         "group.phone": ("phones",)}


def _frozen(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def key(st: State) -> tuple[object, ...]:
    data = tuple(_frozen(st.data.get(name)) for name in SHOWN.get(st.node, ()))
    return (st.node, st.page, st.lang, st.unlocked, st.ended, data)


def walk(caller: Caller | None, lang: str, open_status: str | None = "in_arrears"
         ) -> tuple[set[str], int]:
    """Breadth-first over (node, page, language, amount, term, loan): every input at
    every reachable place. Returns the nodes visited and the screens checked."""
    port = FakePort(SETTINGS, caller_=caller, open_status=open_status)
    st, screen = step(State(phone=PHONE, sid="walk", lang=lang), None, port)
    check(screen, "first screen")
    frontier, seen, visited, checked = [st], {key(st)}, {st.node}, 1
    while frontier:
        current = frontier.pop(0)
        for typed in INPUTS:
            nxt, screen = step(current, typed, port)
            checked += 1
            check(screen, f"{current.node} <- {typed!r} ({lang})")
            visited.add(nxt.node)
            if not screen.end and key(nxt) not in seen:
                seen.add(key(nxt))
                frontier.append(nxt)
    return visited, checked


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_every_screen_fits_is_gsm7_and_every_node_is_reached(lang):
    visited: set[str] = set()
    total = 0
    for caller in (None, full_member(lang), full_member(lang, terms=False, pin=False),
                   full_member(lang, pin=False), full_member(lang, locked=True),
                   full_member(lang, status="pending")):
        nodes, checked = walk(caller, lang)
        visited |= nodes
        total += checked
    for open_status in (None, "listed", "repaying"):  # how to repay, for each kind of loan
        total += walk(full_member(lang), lang, open_status)[1]
    assert set(NODES) - {"resume"} <= visited, sorted(set(NODES) - visited)
    assert total > 2000


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_the_resume_offer_fits_and_both_choices_lead_somewhere(lang):
    port = FakePort(SETTINGS, caller_=full_member(lang))
    saved = State(node="lend.pin", lang=lang, caller=full_member(lang), looked_up=True,
                  phone=PHONE, sid="old", data={"flow": "old:3", "loan": "L1000001",
                                                "amount": 4_999_900, "name": LONG_FIRST})
    offer = resume(State(phone=PHONE, sid="new"), saved)
    st, screen = step(offer, None, port)
    check(screen, "resume offer")
    assert st.node == "resume"
    cont, screen = step(st, "1", port)
    check(screen, "continue")
    assert cont.node == "lend.pin" and cont.data["flow"] == "old:3"
    again, screen = step(st, "2", port)
    check(screen, "start again")
    assert again.node == "main" and "flow" not in again.data

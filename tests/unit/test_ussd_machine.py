"""The state machine without Flask, Redis or a database: navigation, re-asks in the
caller's language, PINs kept out of state, money keys fixed per flow."""
from __future__ import annotations

from core.config import load_settings
from tests.fake_port import PIN, FakePort
from ussd.machine import resume, resume_point, step
from ussd.screen import fit
from ussd.session import LastHop, fingerprint
from ussd.state import Caller, State

SETTINGS = load_settings(env={})


def lender(lang: str = "en") -> Caller:
    return Caller(id=7, first_name="Otieno", roles=["lender"], language=lang,
                  status="verified", terms=True, pin=True, limit=500_000)


def walk(port: FakePort, *inputs: str, state: State | None = None) -> tuple[State, str]:
    st, screen = step(state or State(phone="+254711000001", sid="s1"), None, port)
    for typed in inputs:
        st, screen = step(st, typed, port)
    return st, screen.payload()


def test_fit_keeps_whole_parts_and_leaves_out_what_does_not_fit():
    parts = ["Wanjiru", "Kisumu Ndogo Mwembe", "farming", "Ksh 5,000"]
    assert fit(parts, 60) == "Wanjiru, Kisumu Ndogo Mwembe, farming, Ksh 5,000"
    assert fit(parts, 27) == "Wanjiru, farming, Ksh 5,000"  # the place left out, not cut
    assert fit(parts, 3) == "Wanjiru"  # the first part always, whole


def test_zero_goes_back_double_zero_home_and_ninety_eight_pages():
    port = FakePort(SETTINGS, caller_=lender())
    st, screen = walk(port, "1")
    assert st.node == "lend" and "98. More" in screen and "1. Wanj" in screen
    st, screen = walk(port, "1", "98")
    assert st.page == 1
    st, _ = walk(port, "1", "98", "0")
    assert st.node == "lend" and st.page == 0
    st, _ = walk(port, "1", "0")
    assert st.node == "main"
    st, _ = walk(port, "1", "1", "00")
    assert st.node == "main" and st.data == {}


def test_invalid_input_is_asked_again_with_the_reason_in_swahili():
    port = FakePort(SETTINGS, caller_=lender("sw"))
    st, screen = walk(port, "1", "1", "elfu")
    assert st.node == "lend.amount"
    assert screen.startswith("CON Kiasi hicho hakieleweki") and "Kiasi cha kukopesha" in screen


def test_a_pin_never_enters_state_and_the_pledge_key_is_fixed_by_the_flow():
    port = FakePort(SETTINGS, caller_=lender())
    st, _ = walk(port, "1", "1", "1")  # the fake's loan has Ksh 1 open
    assert st.node == "lend.pin" and PIN not in st.to_json()
    flow = st.data["flow"]
    done, screen = step(st, PIN, port)
    assert screen.payload().startswith("END You pledged Ksh 1 ") and PIN not in done.to_json()
    assert port.calls[-1] == f"pledge:ussd:{flow}:pledge:L1000000:100"
    # a redial that continues the same dropped flow uses the same key
    offer = resume(State(phone="+254711000001", sid="s2"), resume_point(st))
    again, _ = step(offer, "1", port)
    step(again, PIN, port)
    assert port.calls[-1] == port.calls[-2]


def test_a_pin_chosen_twice_is_compared_by_digest_only():
    port = FakePort(SETTINGS, caller_=None)
    st, _ = walk(port, "1", "Halima Njoroge", "23456789", "1", "1", "4826")
    assert st.node == "reg.pin2" and "4826" not in st.to_json()
    st, screen = step(st, "4827", port)
    assert st.node == "reg.pin" and "differ" in screen.text
    st, screen = walk(port, "1", "Halima Njoroge", "23456789", "1", "1", "4826", "4826")
    assert screen.startswith("END Welcome, Halima") and "register_self" in port.calls


def test_the_new_input_is_what_follows_the_last_text_even_with_a_star_inside():
    secret = b"k" * 16
    last = LastHop(len("1*2"), fingerprint(secret, "1*2", []), "CON x", [])
    assert last.extension(secret, "1*2*3*4") == "3*4"
    assert last.extension(secret, "1*2*") == ""
    assert last.extension(secret, "7") is None  # not an extension: taken whole
    assert last.same(secret, "1*2") and not last.same(secret, "1*3")


def test_a_pin_in_the_text_does_not_change_the_digest_yet_the_rest_does():
    secret = b"k" * 16
    pin_at = [(4, 8)]  # "5*2*" then the PIN
    digest = fingerprint(secret, "5*2*2580", pin_at)
    assert all(fingerprint(secret, f"5*2*{pin:04d}", pin_at) == digest
               for pin in (0, 1234, 2580, 9999))  # nothing to try PINs against
    assert fingerprint(secret, "5*3*2580", pin_at) != digest
    last = LastHop(8, digest, "CON x", pin_at)
    assert last.same(secret, "5*2*2580") and last.extension(secret, "5*2*2580*1") == "1"



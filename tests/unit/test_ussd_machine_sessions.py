"""The USSD machine across a session's life: a suspended caller at the door, one key per
money flow, a refusal while showing a screen, a node gone after a deploy, and a
dropped session resumed in the caller's language."""
from __future__ import annotations

from dataclasses import replace

from core.config import load_settings
from core.errors import NotAllowed
from core.messages import text
from tests.fake_port import LOCKED_PIN, NOW, PIN, FakePort
from ussd.machine import resume, resume_point, step
from ussd.state import Caller, State

SETTINGS = load_settings(env={})
PHONE = "+254711000001"


def lender(lang: str = "en", **changes: object) -> Caller:
    caller = Caller(id=7, first_name="Otieno", roles=["lender"], language=lang,
                    status="verified", terms=True, pin=True, limit=500_000)
    return replace(caller, **changes)


def fresh(sid: str = "s1") -> State:
    return State(phone=PHONE, sid=sid)


def test_a_suspended_caller_is_told_at_once_in_their_language_and_the_session_ends() -> None:
    for lang in ("en", "sw"):
        port = FakePort(SETTINGS, caller_=lender(lang, status="suspended"))
        st, screen = step(fresh(), None, port)
        assert screen.payload() == "END " + text("member.suspended", lang)
        assert st.ended and st.lang == lang and st.data == {}
        assert port.calls == ["caller"]


def test_a_suspended_caller_dialling_a_choice_in_the_code_is_not_answered() -> None:
    # `*384*1#`: the first hop already carries "1"; nothing is chosen for them.
    port = FakePort(SETTINGS, caller_=lender(status="suspended"))
    st, screen = step(fresh(), "1", port)
    assert screen.payload() == "END " + text("member.suspended", "en")
    assert st.ended and port.calls == ["caller"]


def test_suspension_is_said_before_a_locked_pin() -> None:
    until = replace(lender(), locked_until=NOW.replace(hour=23).isoformat())
    port = FakePort(SETTINGS, caller_=replace(until, status="suspended"))
    _, screen = step(fresh(), None, port)
    assert screen.payload() == "END " + text("member.suspended", "en")


def test_the_caller_is_looked_up_once_a_session() -> None:
    port = FakePort(SETTINGS, caller_=lender("sw"))
    st, screen = step(fresh(), None, port)
    assert st.looked_up and st.caller is not None and st.lang == "sw"
    st, _ = step(st, "1", port)
    st, _ = step(st, "00", port)
    assert port.calls.count("caller") == 1 and st.node == "main"


def test_each_hop_is_counted_and_each_money_flow_has_its_own_key() -> None:
    port = FakePort(SETTINGS, caller_=lender())
    st, _ = step(fresh(), None, port)
    for typed in ("1", "1", "1"):
        st, _ = step(st, typed, port)
    assert st.step == 4 and st.node == "lend.pin"
    first = st.data["flow"]
    st, _ = step(st, "00", port)  # home, then the same pledge again in the same session
    for typed in ("1", "1", "1"):
        st, _ = step(st, typed, port)
    assert st.step == 8 and st.node == "lend.pin"
    second = st.data["flow"]
    assert second != first
    _, screen = step(st, PIN, port)
    assert screen.end
    assert port.calls[-1] == f"pledge:ussd:{second}:pledge:L1000000:100"


def test_a_refusal_while_showing_a_screen_ends_the_session_with_the_reason() -> None:
    # A dropped pledge continued after its loan stopped taking pledges (the fake
    # refuses L1000003): the amount screen cannot be shown, the reason is.
    for lang in ("en", "sw"):
        port = FakePort(SETTINGS, caller_=lender(lang))
        saved = State(node="lend.amount", lang=lang, step=5, caller=lender(lang),
                      looked_up=True, phone=PHONE, sid="s1",
                      data={"flow": "s1:2", "loan": "L1000003"})
        st, screen = step(resume(fresh("s2"), saved), "1", port)
        assert screen.payload() == "END " + text("loan.not_listed", lang, number="L1000003")
        assert st.ended and st.data == {}


def test_a_node_renamed_by_a_deploy_mid_session_leads_home() -> None:
    port = FakePort(SETTINGS, caller_=lender("sw"))
    st = State(node="lend.renamed_away", lang="sw", step=3, caller=lender("sw"),
               looked_up=True, phone=PHONE, sid="s1", data={"loan": "L1000001"})
    st, screen = step(st, "1", port)
    assert st.node == "main" and not st.ended and not screen.end
    assert screen.title == text("ussd.main.title", "sw", name="Otieno")


def test_a_resumed_session_keeps_the_callers_language() -> None:
    port = FakePort(SETTINGS, caller_=lender("sw"))
    saved = State(node="lend.amount", lang="sw", step=5, caller=lender("sw"), looked_up=True,
                  phone=PHONE, sid="s1", data={"flow": "s1:2", "loan": "L1000001"})
    offer = resume(fresh("s2"), saved)
    assert offer.lang == "sw" and offer.caller == saved.caller and offer.looked_up
    st, screen = step(offer, None, port)
    assert screen.title == text("ussd.resume.title", "sw")
    restarted, screen = step(st, "2", port)  # start again: the main menu, still in Swahili
    assert restarted.node == "main" and restarted.lang == "sw"
    assert screen.title == text("ussd.main.title", "sw", name="Otieno")
    assert port.calls == []  # the caller came with the saved session: no lookup


def test_a_resumed_session_whose_node_was_renamed_starts_again_at_home() -> None:
    port = FakePort(SETTINGS, caller_=lender("sw"))
    saved = State(node="lend.renamed_away", lang="sw", caller=lender("sw"), looked_up=True,
                  phone=PHONE, sid="s1", data={"loan": "L1000001"})
    st, screen = step(resume(fresh("s2"), saved), "1", port)
    assert st.node == "main" and st.data == {} and not screen.end


def test_a_reason_is_shown_once_and_not_again_on_the_way_back() -> None:
    port = FakePort(SETTINGS, caller_=lender())
    st, _ = step(fresh(), None, port)
    for typed in ("1", "1"):
        st, _ = step(st, typed, port)
    st, screen = step(st, "elfu", port)  # not an amount: asked again with the reason
    reason = text("ussd.amount.invalid", "en")
    assert st.node == "lend.amount" and screen.title == reason
    st, screen = step(st, "0", port)  # back to the list of loans
    assert st.node == "lend" and reason not in screen.payload()


def test_asked_again_at_another_node_starts_at_its_first_page() -> None:
    port = FakePort(SETTINGS, caller_=lender("en", terms=False))
    st, _ = step(fresh(), None, port)
    assert st.node == "terms"
    st.page = 2
    st, screen = step(st, "1", port)  # accept: told so at the main menu
    assert st.node == "main" and st.page == 0
    assert screen.title == text("ussd.terms.done", "en")


def test_what_a_redial_may_continue() -> None:
    saved = State(node="lend.amount", lang="sw", step=5, caller=lender("sw"), looked_up=True,
                  phone=PHONE, sid="s1", data={"flow": "s1:2", "loan": "L1000001"})
    assert resume_point(saved) == saved  # a pledge half-typed
    offer = resume(fresh("s2"), saved)
    assert resume_point(offer) == saved  # dropped again at the offer: still the pledge
    assert resume_point(replace(saved, node="main")) is None  # nothing to continue
    assert resume_point(replace(saved, node="lend.renamed_away")) is None
    assert resume_point(replace(saved, ended=True)) is None


class SuspendedMeanwhile(FakePort):
    """An operator suspends the caller between two hops: the pledge is refused."""

    def pledge(self, *, member_id: int, number: str, amount: int, pin: str, key: str) -> None:
        raise NotAllowed("member.suspended")


def at_pledge_pin(port: FakePort) -> State:
    st, _ = step(fresh(), None, port)
    for typed in ("1", "1", "1"):
        st, _ = step(st, typed, port)
    assert st.node == "lend.pin"
    return st


def test_a_wrong_pin_asks_again_with_the_tries_left_and_the_session_stays_open() -> None:
    port = FakePort(SETTINGS, caller_=lender("sw"))
    st, screen = step(at_pledge_pin(port), "9876", port)
    assert st.node == "lend.pin" and not st.ended and not screen.end
    assert screen.title == text("pin.wrong", "sw", tries_left=2)


def test_a_pin_locked_by_this_try_ends_the_session_with_when_it_ends() -> None:
    port = FakePort(SETTINGS, caller_=lender())
    st, screen = step(at_pledge_pin(port), LOCKED_PIN, port)
    assert screen.payload() == "END " + text("pin.locked", "en", until="23:59")
    assert st.ended and st.data == {}


def test_a_caller_suspended_between_two_hops_is_told_and_the_session_ends() -> None:
    port = SuspendedMeanwhile(SETTINGS, caller_=lender())
    st, screen = step(at_pledge_pin(port), PIN, port)
    assert screen.payload() == "END " + text("member.suspended", "en")
    assert st.ended


def test_a_locked_pin_is_said_on_the_first_screen_of_a_member_at_main() -> None:
    locked_until = NOW.replace(hour=23).isoformat()
    port = FakePort(SETTINGS, caller_=lender(locked_until=locked_until))
    st, _ = step(fresh(), None, port)
    assert st.node == "locked"
    owing_terms = FakePort(SETTINGS, caller_=lender(locked_until=locked_until, terms=False))
    st, _ = step(fresh(), None, owing_terms)
    assert st.node == "terms"  # the terms come first; the PIN is not asked there


def test_a_choice_in_the_dialled_code_is_answered_on_the_first_hop() -> None:
    port = FakePort(SETTINGS, caller_=lender())
    st, _ = step(fresh(), "1", port)  # *384*1#: straight to the loans open to lenders
    assert st.node == "lend" and st.step == 1


def test_a_hop_without_input_shows_the_current_screen_and_a_refusal_there_ends_it() -> None:
    port = FakePort(SETTINGS, caller_=lender())
    st, first = step(fresh(), None, port)
    st, listed = step(st, "1", port)
    again_st, again = step(st, None, port)
    assert again_st.node == "lend" and again.payload() == listed.payload()
    gone = State(node="lend.amount", caller=lender(), looked_up=True, phone=PHONE, sid="s1",
                 data={"flow": "s1:2", "loan": "L1000003"})
    st, screen = step(gone, None, port)
    assert screen.payload() == "END " + text("loan.not_listed", "en", number="L1000003")
    assert st.ended

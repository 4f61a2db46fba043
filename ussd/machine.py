"""The USSD state machine: `step(state, new_input, port) -> (state, screen)`.

Pure with respect to Flask and Redis: everything it needs from the outside comes
through `port`. Navigation conventions: `0` back (or the previous page), `00` the
main menu, `98` the next page of a list.
"""
from __future__ import annotations

import logging

from core.errors import DomainError, PinLocked
from core.models import MemberStatus
from ussd import (  # noqa: F401 (register)
    menus_agent,
    menus_borrower,
    menus_group,
    menus_lender,
    menus_start,
)
from ussd.nodes import NAV_BACK, NAV_HOME, REASON, SHOW_CURRENT, Node, Reask, root_of, t
from ussd.port import Port
from ussd.screen import Screen
from ussd.state import State

log = logging.getLogger(__name__)

NODES = Node.registry
# Errors that close the session rather than re-ask.
FINAL_ERRORS = ("member.suspended", "pin.locked", "pin.wrong_locked", "member.exists")


def step(state: State, new_input: str | None, port: Port) -> tuple[State, Screen]:
    """Answer one hop: `new_input` is what the caller typed since the last hop (None on
    the first hop of a session). Returns the new state and the screen to show."""
    st = state.copy()
    st.step += 1
    if not st.node:
        screen = enter(st, port)
        if not new_input or screen.end:
            return st, finish(st, screen)
    elif new_input is None:
        return st, finish(st, show(st, st.node, port))
    return st, finish(st, answer(st, (new_input or "").strip(), port))


def resume(state: State, saved: State) -> State:
    """A fresh session that offers to continue `saved` (a dropped session)."""
    st = state.copy()
    st.node = "resume"
    st.lang = saved.lang
    st.caller = saved.caller
    st.looked_up = saved.looked_up
    st.data = {"saved": saved.copy().to_dict()}
    return st


def resume_point(st: State) -> State | None:
    """What a redial may continue, if this session drops now."""
    if st.ended:
        return None
    if st.node == "resume":
        return State.from_dict(st.data["saved"])
    node = NODES.get(st.node)
    return st if node is not None and node.resumable else None


def takes_secret(st: State) -> bool:
    """Whether the next input answers a PIN question: the session keeps no digest of it."""
    node = NODES.get(st.node)
    return node is not None and node.secret_input


def enter(st: State, port: Port) -> Screen:
    """The first screen of a session: who is calling decides where they start."""
    if not st.looked_up:
        st.caller = port.caller(st.phone)
        st.looked_up = True
        if st.caller is not None:
            st.lang = st.caller.language
    if st.caller is not None and st.caller.status == MemberStatus.SUSPENDED:
        return Screen(t(st, "member.suspended"), end=True)
    root = root_of(st)
    if root == "main" and st.caller is not None and st.caller.locked(port.now()):
        root = "locked"  # said at once, not found at the last step
    return go(st, root, port)


def go(st: State, name: str, port: Port) -> Screen:
    st.node = name
    st.page = 0
    return show(st, name, port)


def show(st: State, name: str, port: Port) -> Screen:
    node = NODES[name]
    try:
        return node.show(st, port)
    except DomainError as exc:
        return Screen(t(st, exc.key, **exc.params), end=True)


def answer(st: State, value: str, port: Port) -> Screen:
    node = NODES.get(st.node)
    if node is None:  # a node renamed by a deploy mid-session
        return go(st, root_of(st), port)
    if node.navigable:
        if value == NAV_HOME:
            st.data = {}
            return go(st, root_of(st), port)
        if value == NAV_BACK:
            if node.paged and st.page > 0:
                st.page -= 1
                return show(st, node.name, port)
            return go(st, node.parent or root_of(st), port)
    try:
        outcome = node.answer(st, value, port)
    except Reask as exc:
        return reask(st, exc.node or node.name, t(st, exc.key, **exc.params), port)
    except DomainError as exc:
        reason = t(st, exc.key, **exc.params)
        if isinstance(exc, PinLocked) or exc.key in FINAL_ERRORS:
            return Screen(reason, end=True)
        return reask(st, node.name, reason, port)
    if isinstance(outcome, Screen):
        return outcome
    if outcome == SHOW_CURRENT:
        return show(st, st.node, port)
    return go(st, outcome, port)


def reask(st: State, name: str, reason: str, port: Port) -> Screen:
    """The node's question again, its title replaced by the reason."""
    if name != st.node:
        st.node = name
        st.page = 0
    st.data[REASON] = reason
    screen = show(st, name, port)
    st.data.pop(REASON, None)
    if screen.end:
        return screen
    return Screen(body=screen.body, title=reason)


def finish(st: State, screen: Screen) -> Screen:
    if screen.end:
        st.ended = True
        st.data = {}
    return screen

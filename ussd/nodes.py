"""The pieces every menu is built from: the node registry, re-asks, numbered menus and
small input readers. A node shows a screen and answers one input."""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any, ClassVar

from core.messages import CATALOG, DEFAULT_LANGUAGE, LANGUAGES, language_or_default, text
from core.money import AmountError, parse_amount
from ussd.port import Port
from ussd.screen import Screen
from ussd.state import State

# Answers a node returns: the name of the next node, or a screen to show as it is.
Outcome = str | Screen

NAV_BACK = "0"
NAV_HOME = "00"
NAV_MORE = "98"
# Where a re-ask leaves its reason for a screen that fits it in itself (lists).
REASON = "_why"
# An answer meaning "show the node the state now points at, as it is".
SHOW_CURRENT = "\x00current"


class Reask(Exception):
    """The input was refused: show the reason and ask again (at `node`, when given)."""

    def __init__(self, key: str, node: str | None = None, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.node = node
        self.params = params


class Node:
    """One screen of the menus. Subclasses implement `show` and `answer`.

    `parent` is where `0` goes; `resumable` marks a place worth offering to continue
    after a dropped session; `navigable` is False where 0/00 mean something else.
    """

    registry: ClassVar[dict[str, Node]] = {}
    secret_input: ClassVar[bool] = False  # its answer is a PIN: never kept, even digested

    def __init__(self, name: str, *, parent: str = "", resumable: bool = False,
                 paged: bool = False, navigable: bool = True) -> None:
        if name in Node.registry:
            raise RuntimeError(f"USSD node {name!r} defined twice")
        self.name = name
        self.parent = parent
        self.resumable = resumable
        self.paged = paged
        self.navigable = navigable
        Node.registry[name] = self

    def show(self, st: State, port: Port) -> Screen:
        raise NotImplementedError

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        raise NotImplementedError


class Info(Node):
    """A screen to read: any answer goes back."""

    def answer(self, st: State, value: str, port: Port) -> Outcome:
        return self.parent or root_of(st)


def t(st: State, key: str, **params: Any) -> str:
    """A text in the caller's language."""
    return text(key, st.lang, **params)


def template(st: State, key: str) -> str:
    """A text unfilled, for screens that fit their fields to the width themselves."""
    return CATALOG[language_or_default(st.lang)].get(key) or CATALOG[DEFAULT_LANGUAGE][key]


def fmt(port: Port, minor: int) -> str:
    return port.settings.fmt(minor)


def numbered(st: State, labels: Sequence[str]) -> str:
    return "\n".join(f"{i}. {label}" for i, label in enumerate(labels, start=1))


def menu(st: State, title: str, labels: Sequence[str], *, back: bool = True) -> Screen:
    """A numbered menu; `0. Back` at the end unless this is a root menu."""
    body = numbered(st, labels)
    if back:
        body += "\n" + t(st, "ussd.nav.back")
    return Screen(body=body, title=title)


def pick(value: str, count: int) -> int:
    """The 0-based index of a numbered option, or re-ask."""
    if value.isdigit() and value.isascii() and 1 <= int(value) <= count:
        return int(value) - 1
    raise Reask("ussd.choose")


def read_amount(value: str, port: Port) -> int:
    """Minor units for a typed amount (`1,500`, `1.5k`), or re-ask with the reason."""
    settings = port.settings
    try:
        return parse_amount(value[:40], scale=settings.app.minor_scale,
                            currency=settings.app.currency)
    except AmountError as exc:
        raise Reask(f"ussd.{exc.key}") from None


def pin_digest(port: Port, st: State, pin: str) -> str:
    """A keyed digest of a PIN typed once, kept only until it is typed again; the
    PIN itself never enters session state."""
    secret = (port.settings.security.session_secret + str(st.data.get("flow", ""))).encode()
    return hmac.new(secret, pin.encode(), hashlib.sha256).hexdigest()


def language_labels(st: State) -> list[str]:
    return [text("ussd.lang.name", lang) for lang in LANGUAGES]


def root_of(st: State) -> str:
    """Where `00` goes: the stranger's menu, the terms a member still owes, or main."""
    caller = st.caller
    if caller is None:
        return "stranger"
    if not caller.terms:
        return "terms"
    if not caller.pin:
        return "terms.pin"
    return "main"
